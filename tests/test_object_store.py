"""Artifacts on an object store: every byte goes through tf.io.gfile / Beam's FileSystems.

``ram://`` (TensorFlow's in-process filesystem, with the Beam filesystem in tests/ramfs.py) stands
in for ``gs://``. A write that bypasses fileio (``open``, ``os.makedirs``, ``shutil``) would create
a local directory named ``ram:`` in the working directory instead, so each test runs in an empty
working directory and checks that it stays empty.
"""

import os
import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

import tests.ramfs  # noqa: F401  (registers the ram:// Beam filesystem)
from components.image_example_gen import spec
from components.image_example_gen.discovery import discover, resolve_span
from components.image_example_gen.ingest import IngestOptions, ingest
from pipelines.sample_data import write_sample_data

IMAGES = 42


def in_memory_pipeline() -> beam.Pipeline:
    # ram:// exists only in this process: no Beam worker processes.
    return beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"]))


@pytest.fixture
def ram_root():
    root = f"ram://cvpipe-{uuid.uuid4().hex[:12]}"
    yield root
    if tf.io.gfile.exists(root):
        tf.io.gfile.rmtree(root)


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty working directory: a path like ``ram://x`` written with ``open`` lands here."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    assert sorted(os.listdir(cwd)) == [], "something was written to the local disk, not through fileio"


@pytest.fixture(scope="module")
def local_images(tmp_path_factory):
    images = tmp_path_factory.mktemp("object-store") / "images"
    write_sample_data(str(images), kind="shapes", count=IMAGES, seed=5, size=32)
    return str(images)


def copy_tree(source: str, destination: str) -> None:
    for directory, _, files in os.walk(source):
        relative = os.path.relpath(directory, source)
        target = destination if relative == "." else f"{destination}/{relative}"
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), f"{target}/{name}", overwrite=True)


def read_catalog(catalog_dir: str) -> list[dict]:
    with tf.io.gfile.GFile(f"{catalog_dir}/{spec.CATALOG_FILE}", "rb") as f:
        return pq.read_table(pa.BufferReader(f.read())).to_pylist()


def count_records(pattern: str) -> int:
    files = tf.io.gfile.glob(pattern)
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) if files else 0


def ingest_into(found, root: str) -> dict:
    return ingest(
        found,
        IngestOptions(),
        span=0,
        examples_dir=f"{root}/examples",
        catalog_dir=f"{root}/catalog",
        make_pipeline=in_memory_pipeline,
    )


def test_ingest_writes_records_catalog_labels_and_summary_into_ram_uri(local_images, ram_root, empty_cwd):
    found = discover(local_images)
    summary = ingest_into(found, ram_root)

    assert summary["ingested"] == IMAGES and summary["quarantined"] == 0
    split_names = IngestOptions().split_names
    assert sorted(tf.io.gfile.listdir(f"{ram_root}/examples")) == sorted(
        [f"Split-{name}" for name in split_names] + [spec.LABELS_FILE]
    )
    records = {name: count_records(f"{ram_root}/examples/Split-{name}/*") for name in split_names}
    assert records == {name: summary["by_split"].get(name, 0) for name in split_names}
    assert sum(records.values()) == IMAGES
    assert len(read_catalog(f"{ram_root}/catalog")) == IMAGES
    for directory in (f"{ram_root}/examples", f"{ram_root}/catalog"):
        with tf.io.gfile.GFile(f"{directory}/{spec.LABELS_FILE}") as f:
            assert f.read().split() == found.labels
    assert tf.io.gfile.exists(f"{ram_root}/catalog/{spec.SUMMARY_FILE}")
    # Beam's temporary shard directories are gone.
    leftovers = [p for p in tf.io.gfile.glob(f"{ram_root}/*/*") if "beam-temp" in p]
    assert leftovers == []


def test_ingest_reads_its_input_images_from_a_ram_uri(local_images, ram_root, empty_cwd):
    images = f"{ram_root}/input/span-3"
    copy_tree(local_images, images)
    tf.io.gfile.makedirs(f"{ram_root}/input/span-1")

    root, span = resolve_span(f"{ram_root}/input/span-{{SPAN}}")
    assert (root, span) == (images, 3)
    found = discover(root)
    local = discover(local_images)
    assert found.candidates == local.candidates and found.labels == local.labels

    summary = ingest_into(found, f"{ram_root}/out")
    local_summary = ingest_into(local, f"{ram_root}/local-out")
    for key in ("seen", "ingested", "quarantined", "duplicates", "by_split", "by_label"):
        assert summary[key] == local_summary[key], key
    catalog = {row[spec.PATH]: row[spec.SHA256] for row in read_catalog(f"{ram_root}/out/catalog")}
    local_catalog = {
        row[spec.PATH]: row[spec.SHA256] for row in read_catalog(f"{ram_root}/local-out/catalog")
    }
    assert catalog == local_catalog


def test_manifest_on_a_ram_uri_flags_missing_files(local_images, ram_root, empty_cwd):
    images = f"{ram_root}/images"
    copy_tree(local_images, images)
    present = discover(local_images).candidates[0]
    with tf.io.gfile.GFile(f"{ram_root}/labels.csv", "w") as f:
        f.write(f"path,label\n{present.path},{present.label}\nnowhere.jpg,circle\n{present.label},x\n")

    found = discover(images, f"{ram_root}/labels.csv")
    reasons = [c.reason for c in found.candidates]
    assert reasons == [None, spec.MISSING_FILE, spec.NOT_A_FILE]


def test_tflite_export_reads_and_writes_only_through_fileio(local_images, ram_root, empty_cwd):
    """An untrained network is enough: this checks where the bytes go, not the model's quality."""
    import dataclasses

    from components.image_model import export
    from components.image_model.model import ModelParams, build_model
    from components.tflite_exporter.export import export_variants
    from components.tflite_exporter.spec import PARITY_FILE

    found = discover(local_images)
    ingest_into(found, ram_root)
    params = ModelParams(num_classes=len(found.labels), image_size=16, width=4, depth=1)
    serving = f"{ram_root}/model/serving"
    export.export_serving_model(
        build_model(params),
        found.labels,
        serving,
        image_size=16,
        channels=3,
        params=dataclasses.asdict(params),
    )

    out = f"{ram_root}/tflite"
    parity = export_variants(
        serving,
        f"{ram_root}/examples",
        out,
        modes=["int8"],
        representative_count=8,
        max_accuracy_drop=1.0,
        min_agreement=0.0,
        model_name="shapes",
    )
    assert [v["mode"] for v in parity["variants"]] == ["int8"]
    assert sorted(tf.io.gfile.listdir(out)) == ["labels.txt", "model_int8.tflite", PARITY_FILE]
    with tf.io.gfile.GFile(f"{out}/model_int8.tflite", "rb") as f:
        assert tf.lite.Interpreter(model_content=f.read()).get_input_details()[0]["dtype"] == np.uint8
