"""Publishing a TFLite artefact under the version number of the serving model it came from.

Each .tflite file's metadata carries the version it is pushed as (the exporter cannot know it), so
a device holding only the file can say which model it runs. The stamped copies are what the
manifest hashes.

    >>> push_edge_model("TFLiteExporter/tflite_model/9", "out/edge", "cvpipe",
    ...                 {"source_model": "TFLiteExporter/tflite_model/9"}, version=1795466000)
    'out/edge/cvpipe/1795466000'
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import tensorflow as tf

from components.serving_pusher.push import next_version, push_directory, walk_files
from components.tflite_exporter.convert import stamp_version
from components.tflite_exporter.spec import TFLITE_SUFFIX


def push_edge_model(
    source: str, base_dir: str, model_name: str, manifest: dict[str, Any], version: int
) -> str:
    """Pushes ``source`` (a TFLiteModel directory) as ``base_dir/model_name/<version>``; returns it.

    ``version`` is the serving push's; when another edge artefact of that model already holds it,
    the next free version is used. Either way the .tflite files carry the version they land under.
    """
    try:
        return _push_stamped(source, base_dir, model_name, manifest, int(version))
    except FileExistsError:
        model_dir = os.path.join(base_dir, model_name)
        return _push_stamped(source, base_dir, model_name, manifest, next_version(model_dir))


def _push_stamped(source: str, base_dir: str, model_name: str, manifest: dict[str, Any], version: int) -> str:
    with tempfile.TemporaryDirectory(prefix="cvpipe-edge-") as staging:  # Local: a few MB at most.
        for relative in walk_files(source):
            with tf.io.gfile.GFile(os.path.join(source, relative), "rb") as f:
                data = f.read()
            if relative.endswith(TFLITE_SUFFIX):
                data = stamp_version(data, str(version))
            # A local temp dir (the stamped copy); push_directory then writes through tf.io.gfile.
            os.makedirs(os.path.dirname(os.path.join(staging, relative)), exist_ok=True)
            with open(os.path.join(staging, relative), "wb") as f:
                f.write(data)
        return push_directory(staging, base_dir, model_name, manifest, version=version)
