"""ServingPusher: atomic versioned push with a manifest, only for blessed models."""

import hashlib
import json
import os
import shutil

import pytest
from tfx.types import standard_artifacts

from components.serving_pusher import spec
from components.serving_pusher.executor import Executor
from components.serving_pusher.push import MANIFEST, push_directory


def make_model_dir(root):
    os.makedirs(root / "variables")
    (root / "saved_model.pb").write_bytes(b"graph")
    (root / "variables" / "variables.index").write_bytes(b"index")
    return root


def test_push_writes_a_complete_version_with_file_digests(tmp_path):
    source = make_model_dir(tmp_path / "model")
    first = push_directory(str(source), str(tmp_path / "serving"), "cvpipe", {"data_span": 3})
    second = push_directory(str(source), str(tmp_path / "serving"), "cvpipe", {})
    assert int(os.path.basename(second)) > int(os.path.basename(first))
    assert sorted(os.listdir(tmp_path / "serving" / "cvpipe")) == sorted(
        [os.path.basename(first), os.path.basename(second)]
    )  # No staging directory left behind.
    manifest = json.loads(open(os.path.join(first, MANIFEST)).read())
    assert manifest["data_span"] == 3 and manifest["model_name"] == "cvpipe"
    assert manifest["files"]["saved_model.pb"] == hashlib.sha256(b"graph").hexdigest()


def _artifacts(tmp_path, blessed):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    make_model_dir(tmp_path / "model" / "Format-Serving")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property(spec.BLESSED, int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    return model, blessing, pushed


def test_unblessed_model_is_not_pushed(tmp_path):
    model, blessing, pushed = _artifacts(tmp_path, blessed=False)
    Executor().Do(
        {spec.MODEL_KEY: [model], spec.MODEL_BLESSING_KEY: [blessing]},
        {spec.PUSHED_MODEL_KEY: [pushed]},
        {spec.BASE_DIRECTORY_KEY: str(tmp_path / "serving"), spec.MODEL_NAME_KEY: "cvpipe"},
    )
    assert pushed.get_int_custom_property(spec.PUSHED) == 0
    assert not os.path.exists(tmp_path / "serving")


def test_blessed_model_is_pushed_and_recorded(tmp_path):
    model, blessing, pushed = _artifacts(tmp_path, blessed=True)
    Executor().Do(
        {spec.MODEL_KEY: [model], spec.MODEL_BLESSING_KEY: [blessing]},
        {spec.PUSHED_MODEL_KEY: [pushed]},
        {spec.BASE_DIRECTORY_KEY: str(tmp_path / "serving"), spec.MODEL_NAME_KEY: "cvpipe"},
    )
    destination = pushed.get_string_custom_property(spec.PUSHED_DESTINATION)
    assert pushed.get_int_custom_property(spec.PUSHED) == 1
    assert pushed.get_int_custom_property(spec.PUSHED_VERSION) == int(os.path.basename(destination))
    assert os.path.exists(os.path.join(destination, "saved_model.pb"))
    assert os.path.exists(os.path.join(destination, MANIFEST))


def test_pushing_the_same_model_again_reuses_its_version(tmp_path):
    model, blessing, pushed = _artifacts(tmp_path, blessed=True)
    props = {spec.BASE_DIRECTORY_KEY: str(tmp_path / "serving"), spec.MODEL_NAME_KEY: "cvpipe"}
    inputs = {spec.MODEL_KEY: [model], spec.MODEL_BLESSING_KEY: [blessing]}
    Executor().Do(inputs, {spec.PUSHED_MODEL_KEY: [pushed]}, props)
    again = standard_artifacts.PushedModel()
    again.uri = str(tmp_path / "pushed2")
    Executor().Do(inputs, {spec.PUSHED_MODEL_KEY: [again]}, props)
    assert len(os.listdir(tmp_path / "serving" / "cvpipe")) == 1
    assert again.get_string_custom_property(spec.PUSHED_DESTINATION) == pushed.get_string_custom_property(
        spec.PUSHED_DESTINATION
    )


class _RecordingCopies:
    """tf.io.gfile.copy, recording the order in which files land under the version directory."""

    def __init__(self):
        import tensorflow as tf

        self.landed, self._copy = [], tf.io.gfile.copy

    def __call__(self, source, target, overwrite=False):
        self.landed.append(target)
        return self._copy(source, target, overwrite=overwrite)


def test_push_to_an_object_store_lands_the_graph_and_then_the_manifest_last(tmp_path):
    import unittest.mock

    import tensorflow as tf

    source = make_model_dir(tmp_path / "model")
    (source / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")
    base = f"ram://push-{os.getpid()}/serving"  # No atomic rename: copied file by file.
    recorder = _RecordingCopies()
    with unittest.mock.patch.object(tf.io.gfile, "copy", recorder):
        target = push_directory(str(source), base, "cvpipe", {"source_model": "m"})
    assert target.startswith(base + "/cvpipe/")
    visible = [os.path.relpath(p, target) for p in recorder.landed if p.startswith(target + "/")]
    assert visible[-2:] == ["saved_model.pb", MANIFEST]
    assert set(visible[:-2]) == {"variables/variables.index", "variables/variables.data-00000-of-00001"}
    assert [e.rstrip("/") for e in tf.io.gfile.listdir(base + "/cvpipe")] == [os.path.basename(target)]
    with tf.io.gfile.GFile(f"{target}/{MANIFEST}") as f:
        assert (
            json.load(f)["files"]["variables/variables.data-00000-of-00001"]
            == hashlib.sha256(b"weights").hexdigest()
        )


def test_served_model_is_the_newest_complete_version_and_is_copied(tmp_path):
    from components.served_model import spec as served_spec
    from components.served_model.executor import Executor as ServedExecutor

    serving = tmp_path / "serving"
    props = {served_spec.BASE_DIRECTORY_KEY: str(serving), served_spec.MODEL_NAME_KEY: "cvpipe"}
    empty = standard_artifacts.Model()
    empty.uri = str(tmp_path / "served0")
    ServedExecutor().Do({}, {served_spec.MODEL_KEY: [empty]}, props)
    assert empty.get_int_custom_property(served_spec.FOUND) == 0  # Nothing served yet.

    old = push_directory(str(make_model_dir(tmp_path / "m1")), str(serving), "cvpipe", {"source_model": "m1"})
    new = push_directory(str(make_model_dir(tmp_path / "m2")), str(serving), "cvpipe", {"source_model": "m2"})
    os.makedirs(serving / "cvpipe" / str(int(os.path.basename(new)) + 5))  # Being written: no manifest.
    served = standard_artifacts.Model()
    served.uri = str(tmp_path / "served1")
    ServedExecutor().Do({}, {served_spec.MODEL_KEY: [served]}, props)
    assert served.get_int_custom_property(served_spec.FOUND) == 1
    assert (
        served.get_int_custom_property(served_spec.SERVED_VERSION)
        == int(os.path.basename(new))
        != int(os.path.basename(old))
    )
    assert served.get_string_custom_property(served_spec.SOURCE_MODEL) == "m2"
    copied = tmp_path / "served1" / "Format-Serving"
    assert sorted(os.listdir(copied)) == ["saved_model.pb", "variables"]  # The manifest stays behind.


@pytest.fixture(scope="module")
def tflite_dir(tmp_path_factory):
    """A TFLiteModel artifact's files: one tiny untrained float32 variant with metadata, as exported."""
    from components.image_model.model import ModelParams, build_model
    from components.tflite_exporter import convert
    from components.tflite_exporter import spec as tflite_spec

    root = tmp_path_factory.mktemp("tflite")
    network = build_model(ModelParams(num_classes=2, image_size=16, width=4, depth=1, input_dtype="float32"))
    model = convert.add_metadata(
        convert.convert(network, "float32"),
        ["cat", "dog"],
        name="cvpipe (float32)",
        version=tflite_spec.UNPUSHED_VERSION,
        description="test",
        author="Pi lab",
    )
    (root / tflite_spec.MODEL_FILE.format(mode="float32")).write_bytes(model)
    (root / tflite_spec.LABELS_FILE).write_text("cat\ndog\n")
    (root / tflite_spec.PARITY_FILE).write_text(json.dumps({"blessed": True}))
    return root


def _edge_push(tmp_path, tflite_uri, *, blessed=True, tflite_blessed=True, version=1700000000):
    """Runs the EdgePusher executor; returns its output artifact."""
    from components.edge_pusher import spec as edge_spec
    from components.edge_pusher.executor import Executor as EdgeExecutor
    from components.tflite_exporter import spec as tflite_spec

    tflite = tflite_spec.TFLiteModel()
    tflite.uri = str(tflite_uri)
    tflite.set_int_custom_property(tflite_spec.BLESSED, int(tflite_blessed))
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property(edge_spec.BLESSED, int(blessed))
    serving = standard_artifacts.PushedModel()
    serving.set_int_custom_property(edge_spec.PUSHED, 1)
    serving.set_int_custom_property(edge_spec.PUSHED_VERSION, version)
    serving.set_string_custom_property(edge_spec.PUSHED_DESTINATION, f"{tmp_path}/serving/cvpipe/{version}")
    out = standard_artifacts.PushedModel()
    out.uri = str(tmp_path / "pushed_edge")
    EdgeExecutor().Do(
        {
            edge_spec.TFLITE_MODEL_KEY: [tflite],
            edge_spec.MODEL_BLESSING_KEY: [blessing],
            edge_spec.PUSHED_MODEL_KEY: [serving],
        },
        {edge_spec.PUSHED_EDGE_MODEL_KEY: [out]},
        {edge_spec.BASE_DIRECTORY_KEY: str(tmp_path / "edge"), edge_spec.MODEL_NAME_KEY: "cvpipe"},
    )
    return out


def test_edge_push_needs_the_model_blessed_and_the_tflite_parity_passed(tmp_path, tflite_dir):
    from components.edge_pusher import spec as edge_spec

    out = _edge_push(tmp_path, tflite_dir, blessed=False)
    assert out.get_int_custom_property(edge_spec.PUSHED) == 0
    assert "not blessed by the Evaluator" in out.get_string_custom_property(edge_spec.REASON)
    out = _edge_push(tmp_path, tflite_dir, tflite_blessed=False)
    assert out.get_int_custom_property(edge_spec.PUSHED) == 0
    assert "parity gate" in out.get_string_custom_property(edge_spec.REASON)
    assert not os.path.exists(tmp_path / "edge")


def test_edge_push_stamps_the_serving_version_into_each_tflite_and_hashes_the_stamped_files(
    tmp_path, tflite_dir
):
    import numpy as np

    from components.edge_pusher import spec as edge_spec
    from components.tflite_exporter import convert
    from components.tflite_exporter import spec as tflite_spec

    name = tflite_spec.MODEL_FILE.format(mode="float32")
    out = _edge_push(tmp_path, tflite_dir, version=1700000000)
    target = out.get_string_custom_property(edge_spec.PUSHED_DESTINATION)
    assert target == str(tmp_path / "edge" / "cvpipe" / "1700000000")
    pushed = (tmp_path / "edge" / "cvpipe" / "1700000000" / name).read_bytes()
    meta, labels = convert.read_metadata(pushed)
    assert (meta["version"], meta["author"], meta["name"], labels) == (
        "1700000000",
        "Pi lab",
        "cvpipe (float32)",
        ["cat", "dog"],
    )
    manifest = json.loads((tmp_path / "edge" / "cvpipe" / "1700000000" / MANIFEST).read_text())
    assert manifest["files"][name] == hashlib.sha256(pushed).hexdigest()
    assert manifest["source_model_version"] == 1700000000
    exported = (tflite_dir / name).read_bytes()
    assert convert.read_metadata(exported)[0]["version"] == tflite_spec.UNPUSHED_VERSION  # Left as is.
    image = np.random.default_rng(0).integers(0, 256, size=(16, 16, 3)).astype(np.uint8)
    np.testing.assert_array_equal(convert.Classifier(pushed)(image), convert.Classifier(exported)(image))


def test_edge_push_under_a_taken_version_stamps_the_next_one_and_repeats_reuse_it(tmp_path, tflite_dir):
    from components.edge_pusher import spec as edge_spec
    from components.tflite_exporter import convert
    from components.tflite_exporter import spec as tflite_spec

    first = _edge_push(tmp_path, tflite_dir, version=1700000000)
    other = shutil.copytree(tflite_dir, tmp_path / "other_tflite")  # Another artefact, same version.
    second = _edge_push(tmp_path, other, version=1700000000)
    target = second.get_string_custom_property(edge_spec.PUSHED_DESTINATION)
    version = os.path.basename(target)
    assert int(version) > 1700000000
    pushed = open(os.path.join(target, tflite_spec.MODEL_FILE.format(mode="float32")), "rb").read()
    assert convert.read_metadata(pushed)[0]["version"] == version
    again = _edge_push(tmp_path, tflite_dir, version=1700000000)
    assert again.get_string_custom_property(edge_spec.PUSHED_DESTINATION) == first.get_string_custom_property(
        edge_spec.PUSHED_DESTINATION
    )
    assert len(os.listdir(tmp_path / "edge" / "cvpipe")) == 2
