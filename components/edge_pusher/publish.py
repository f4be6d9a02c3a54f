"""Publishing a TFLite artefact under the version number of the serving model it came from.

>>> push_edge_model("TFLiteExporter/tflite_model/9", "out/edge", "cvpipe",
...                 {"source_model": "TFLiteExporter/tflite_model/9"}, version=1795466000)
'out/edge/cvpipe/1795466000'
"""

from __future__ import annotations

from typing import Any

from components.serving_pusher.push import push_directory


def push_edge_model(
    source: str, base_dir: str, model_name: str, manifest: dict[str, Any], version: int
) -> str:
    """Pushes ``source`` (a TFLiteModel directory) as ``base_dir/model_name/<version>``; returns it.

    ``version`` is the serving push's; when another edge artefact of that model already holds it,
    the next free version is used.
    """
    try:
        return push_directory(source, base_dir, model_name, manifest, version=version)
    except FileExistsError:
        return push_directory(source, base_dir, model_name, manifest)
