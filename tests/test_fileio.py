"""components.fileio does what tf.io.gfile does, locally without TensorFlow; the light names agree."""

import os
import uuid

import pytest
import tensorflow as tf

from components import fileio


def test_local_files_read_and_write_as_gfile_does(tmp_path):
    text = "label,café\r\nline two\n"  # UTF-8, and line endings kept as written.
    path = str(tmp_path / "sub" / "dir" / "a.txt")
    fileio.makedirs(os.path.dirname(path))
    fileio.makedirs(os.path.dirname(path))  # Exists: nothing happens.
    with fileio.open(path, "w") as f:
        f.write(text)
    with tf.io.gfile.GFile(path, "rb") as f:
        assert f.read() == text.encode("utf-8")
    with fileio.open(path) as f, tf.io.gfile.GFile(path) as g:
        assert f.read() == g.read() == text
    with fileio.open(path, "rb") as f:
        assert f.read() == text.encode("utf-8")

    directory = str(tmp_path / "sub" / "dir")
    assert fileio.exists(path) and not fileio.exists(path + ".missing")
    assert sorted(fileio.listdir(directory)) == sorted(tf.io.gfile.listdir(directory)) == ["a.txt"]
    assert fileio.glob(f"{directory}/*.txt") == tf.io.gfile.glob(f"{directory}/*.txt") == [path]

    other = str(tmp_path / "b.txt")
    with fileio.open(other, "w") as f:
        f.write("b")
    with pytest.raises(FileExistsError):
        fileio.rename(path, other)
    fileio.rename(path, other, overwrite=True)
    with fileio.open(other) as f:
        assert f.read() == text and not fileio.exists(path)


def test_uris_go_to_tensorflows_filesystems(tmp_path, monkeypatch):
    root = f"ram://fileio-{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)  # A URI written as a local path would land here, under "ram:".
    fileio.makedirs(f"{root}/a")
    with fileio.open(f"{root}/a/x.json.tmp", "w") as f:
        f.write('{"ok": true}')
    fileio.rename(f"{root}/a/x.json.tmp", f"{root}/a/x.json", overwrite=True)
    try:
        with tf.io.gfile.GFile(f"{root}/a/x.json") as f:
            assert f.read() == '{"ok": true}'
        assert fileio.exists(f"{root}/a/x.json") and not fileio.exists(f"{root}/a/x.json.tmp")
        assert [e.rstrip("/") for e in fileio.listdir(root)] == ["a"]
        assert fileio.glob(f"{root}/a/*.json") == [f"{root}/a/x.json"]
        assert os.listdir(tmp_path) == []
    finally:
        tf.io.gfile.rmtree(root)


@pytest.mark.parametrize(
    "path,uri",
    [
        ("gs://bucket/x", True),
        ("ram://x", True),
        ("s3://b/k", True),
        ("hdfs://n/p", True),
        ("/tmp/run", False),
        ("out/run", False),
        ("weird/a://b", False),
        ("C:/data", False),
    ],
)
def test_a_path_with_a_scheme_is_a_uri(path, uri):
    assert fileio.is_uri(path) is uri


def test_names_read_without_tfx_equal_the_pipelines():
    """Lineage and the report read type names, node ids and file names from modules without TFX."""
    from components import artifacts
    from components.data_checks import spec as checks_spec
    from components.image_example_gen import spec as example_spec
    from components.tflite_exporter import spec as tflite_spec
    from components.validation_report import spec as report_spec
    from pipelines import nodes, pipeline, runner

    # The names ML Metadata and compiled Kubeflow specs already hold: "components.<class name>".
    for module, cls, name in (
        (checks_spec, artifacts.DataCheckResults, checks_spec.DATA_CHECK_RESULTS_TYPE),
        (report_spec, artifacts.ValidationReport, report_spec.VALIDATION_REPORT_TYPE),
        (example_spec, artifacts.ImageCatalog, example_spec.IMAGE_CATALOG_TYPE),
        (tflite_spec, artifacts.TFLiteModel, tflite_spec.TFLITE_MODEL_TYPE),
    ):
        assert cls.TYPE_NAME == name == f"components.{cls.__name__}"
        assert getattr(module, cls.__name__) is cls  # Still handed out by the spec module.
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        checks_spec.Nothing

    for name, value in vars(nodes).items():
        if name.isupper():  # Node ids re-exported by the pipeline factory, run files by the runner.
            assert getattr(runner if name in ("METADATA_FILE", "PIPELINE_ROOT") else pipeline, name) == value
