"""ServingPusher: atomic versioned push with a manifest, only for blessed models."""

import hashlib
import json
import os

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
