"""The whole pipeline with its pipeline root and push destinations on a non-local filesystem.

TensorFlow's in-process ``ram://`` filesystem stands in for ``gs://`` (tests/ramfs.py gives Beam
the same filesystem): every node reads and writes its artifacts, the statistics store and the
pushes there. A byte written around ``tf.io.gfile`` (with ``os``, ``shutil`` or ``open``) would
land on the local disk, under a directory named ``ram:``, and fail the test. ML Metadata stays a
local SQLite file, as on a laptop pointing at a bucket.

A second run on one more image then shows the served model as the baseline: ServedModel finds the
first run's push, the Evaluator compares against it and the blessing records its version.
"""

import os
import uuid

import pytest
import tensorflow as tf

import tests.ramfs  # noqa: F401 - Beam's filesystem for ram://
from components.serving_pusher.push import MANIFEST
from pipelines import pipeline as nodes
from pipelines.config import load_config
from pipelines.runner import run_pipeline
from pipelines.sample_data import write_sample_data
from tests.conftest import write

FAST = {
    # ram:// lives in this process's memory, which worker processes (trials, the fit) cannot read.
    "tuning": {
        "max_trials": 1,
        "epochs": 1,
        "parallel_trials": 0,
        "search_space": {"width": [16], "depth": [1]},
    },
    "training": {"epochs": 2, "fresh_process": False},
    "evaluation": {"min_accuracy": 0.0, "max_accuracy_drop": 1.0},
    "edge": {"representative_count": 20, "max_accuracy_drop": 1.0, "min_agreement": 0.0},
    "validation": {"min_class_count": 2},
    "beam": {"args": ["--direct_running_mode=in_memory"]},  # ram:// lives in this process.
}


def _local_files(root: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def _read_uri(uri: str) -> str:
    with tf.io.gfile.GFile(uri) as f:
        return f.read()


@pytest.mark.slow
def test_pipeline_on_an_object_store_root_trains_pushes_and_compares_with_the_served_model(
    tmp_path, monkeypatch, capsys
):
    images = tmp_path / "images"
    write_sample_data(str(images), kind="shapes", count=60, seed=5)
    bucket = f"ram://cvpipe-{uuid.uuid4().hex[:8]}"
    root, pushes = f"{bucket}/root", f"{bucket}/pushes"
    out = tmp_path / "out"
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # A relative write (e.g. into "ram:/...") would land here.
    config = load_config(None, {"input": {"images": str(images)}, **FAST})

    first = run_pipeline(config, str(out), echo=lambda _: None, pipeline_root=root, push_root=pushes)
    assert set(first.nodes.values()) == {"ran"}
    for uris in first.outputs.values():
        for uri in (u for group in uris.values() for u in group):
            assert uri.startswith(root + "/"), uri
    serving = f"{pushes}/serving/cvpipe"
    (version,) = [v.rstrip("/") for v in tf.io.gfile.listdir(serving)]
    assert tf.io.gfile.exists(f"{serving}/{version}/saved_model.pb")
    assert tf.io.gfile.exists(f"{serving}/{version}/{MANIFEST}")
    assert tf.io.gfile.exists(f"{pushes}/edge/cvpipe/{version}/model_int8.tflite")
    assert tf.io.gfile.exists(f"{root}/cvpipe/statistics/span-0/span.json")
    report = first.outputs[nodes.VALIDATION_REPORT]["report"][0]
    assert "<html" in _read_uri(f"{report}/index.html")
    # Nothing but ML Metadata on the local disk; nothing relative in the working directory.
    assert _local_files(str(out)) == ["metadata.sqlite"]
    assert _local_files(str(work)) == []

    write(str(images / "circle" / "extra.jpg"), (images / "circle" / "circle_00000.jpg").read_bytes() + b"\0")
    second = run_pipeline(config, str(out), echo=lambda _: None, pipeline_root=root, push_root=pushes)
    assert second.nodes[nodes.EXAMPLE_GEN] == "ran" and second.nodes[nodes.SERVED_MODEL] == "ran"
    from ml_metadata.proto import metadata_store_pb2  # noqa: F401

    from pipelines import metadata

    store = metadata.open_store(second.metadata_path)
    (blessing,) = store.get_artifacts_by_uri(second.outputs[nodes.EVALUATOR]["blessing"][0])
    assert blessing.custom_properties["baseline_version"].int_value == int(version)
    (table,) = store.get_artifacts_by_uri(second.outputs[nodes.EVALUATOR]["metrics"][0])
    assert "baseline_sparse_categorical_accuracy" in table.custom_properties
    assert _local_files(str(out)) == ["metadata.sqlite"] and _local_files(str(work)) == []

    from pipelines.cli import main

    capsys.readouterr()
    assert main(["lineage", str(out)]) == 0
    assert f"baseline: served version {version} ({serving}/{version})" in capsys.readouterr().out
