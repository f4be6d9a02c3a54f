"""Publishing a directory atomically as a numbered model version, with a manifest.

TF Serving loads ``<base>/<model_name>/<version>/`` and ignores other names, so the copy is made
under a dot-name in the same directory and renamed into place once complete: a reader never sees
a half-written version.

    >>> push_directory("trained/serving_model", "out/serving", "cvpipe", {"accuracy": 0.98})
    'out/serving/cvpipe/1795466000'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Any

MANIFEST = "cvpipe_manifest.json"


def file_digests(root: str) -> dict[str, str]:
    digests = {}
    for directory, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(directory, name)
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            digests[os.path.relpath(path, root)] = digest.hexdigest()
    return dict(sorted(digests.items()))


def list_versions(model_dir: str) -> list[int]:
    """The numbered versions under a TF Serving model directory, newest first."""
    if not os.path.isdir(model_dir):
        return []
    return sorted((int(n) for n in os.listdir(model_dir) if n.isdigit()), reverse=True)


def next_version(model_dir: str) -> int:
    """Seconds since the epoch, bumped past any existing version (TF Serving serves the highest)."""
    return max([int(time.time())] + [v + 1 for v in list_versions(model_dir)])


def push_directory(
    source: str, base_dir: str, model_name: str, manifest: dict[str, Any], version: int | None = None
) -> str:
    """Copies ``source`` to ``base_dir/model_name/<version>`` atomically; returns that path.

    ``version`` defaults to the next free one; a given version that already exists is an error.
    """
    if not os.path.isdir(source):
        raise FileNotFoundError(f"nothing to push: {source} is not a directory")
    model_dir = os.path.join(base_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    version = next_version(model_dir) if version is None else int(version)
    if os.path.exists(os.path.join(model_dir, str(version))):
        raise FileExistsError(f"{model_dir}/{version} already exists")
    staging = os.path.join(model_dir, f".staging-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    full_manifest = {
        "model_name": model_name,
        "version": version,
        "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **manifest,
        "files": file_digests(staging),
    }
    with open(os.path.join(staging, MANIFEST), "w") as f:
        json.dump(full_manifest, f, indent=2, sort_keys=True)
    target = os.path.join(model_dir, str(version))
    os.rename(staging, target)  # Atomic on one filesystem.
    return target


def find_pushed(base_dir: str, model_name: str, source: str) -> str | None:
    """The newest pushed version whose manifest names ``source``, if any: pushing is idempotent."""
    model_dir = os.path.join(base_dir, model_name)
    for version in list_versions(model_dir):
        path = os.path.join(model_dir, str(version), MANIFEST)
        try:
            with open(path) as f:
                if json.load(f).get("source_model") == source:
                    return os.path.dirname(path)
        except (OSError, ValueError):
            continue
    return None
