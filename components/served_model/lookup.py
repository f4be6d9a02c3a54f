"""Which model is being served now: the newest complete version at the serving push destination.

The baseline a candidate must beat, and the weights a warm start begins from, are both "the model
being served now". Reading it from the push destination (not from an orchestrator's metadata)
gives the same answer on a local run, on Kubeflow Pipelines and on Vertex AI.

    >>> served = latest_served("gs://bucket/serving", "cvpipe")
    >>> served.version, served.manifest["metrics"]["test_accuracy"]
    (1795466000, 0.98)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from components.serving_pusher.push import MANIFEST, complete_versions, copy_files, walk_files


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    path: str
    version: int
    manifest: dict[str, Any]


def latest_served(base_dir: str, model_name: str) -> ServedVersion | None:
    """The newest complete (manifest written last) version under ``base_dir/model_name``."""
    for path, manifest in complete_versions(base_dir, model_name):
        return ServedVersion(path, int(manifest.get("version", os.path.basename(path))), manifest)
    return None


def copy_model(served: ServedVersion, target: str) -> None:
    """Copies the served SavedModel (without cvpipe's manifest) into ``target``."""
    copy_files(served.path, target, [f for f in walk_files(served.path) if f != MANIFEST])
