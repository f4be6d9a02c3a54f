"""ServingPusher: atomic versioned push with a manifest, only for blessed models."""

import hashlib
import json
import os

from tfx.types import standard_artifacts

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
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    return model, blessing, pushed


def test_unblessed_model_is_not_pushed(tmp_path):
    model, blessing, pushed = _artifacts(tmp_path, blessed=False)
    Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"base_directory": str(tmp_path / "serving"), "model_name": "cvpipe"},
    )
    assert pushed.get_int_custom_property("pushed") == 0
    assert not os.path.exists(tmp_path / "serving")


def test_blessed_model_is_pushed_and_recorded(tmp_path):
    model, blessing, pushed = _artifacts(tmp_path, blessed=True)
    Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"base_directory": str(tmp_path / "serving"), "model_name": "cvpipe"},
    )
    destination = pushed.get_string_custom_property("pushed_destination")
    assert pushed.get_int_custom_property("pushed") == 1
    assert os.path.exists(os.path.join(destination, "saved_model.pb"))
    assert os.path.exists(os.path.join(destination, MANIFEST))


def test_pushing_the_same_model_again_reuses_its_version(tmp_path):
    model, blessing, pushed = _artifacts(tmp_path, blessed=True)
    props = {"base_directory": str(tmp_path / "serving"), "model_name": "cvpipe"}
    Executor().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]}, props)
    again = standard_artifacts.PushedModel()
    again.uri = str(tmp_path / "pushed2")
    Executor().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [again]}, props)
    assert len(os.listdir(tmp_path / "serving" / "cvpipe")) == 1
    assert again.get_string_custom_property("pushed_destination") == pushed.get_string_custom_property(
        "pushed_destination"
    )
