"""ServingPusher executor: check the blessing, push, record where."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.serving_pusher.push import find_pushed, push_directory


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        pushed = artifact_utils.get_single_instance(output_dict["pushed_model"])
        blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        if not blessing.get_int_custom_property("blessed"):
            logging.warning("ServingPusher: model %s is not blessed; nothing pushed", model.uri)
            pushed.set_int_custom_property("pushed", 0)
            return
        manifest: dict[str, Any] = {"source_model": model.uri, "blessing": blessing.uri}
        runs = input_dict.get("model_run") or []
        if runs:
            metrics_path = os.path.join(runs[0].uri, "metrics.json")
            if tf.io.gfile.exists(metrics_path):
                with tf.io.gfile.GFile(metrics_path) as f:
                    manifest["metrics"] = json.load(f)
        examples = input_dict.get("examples") or []
        if examples:
            manifest["data_span"] = examples[0].span
            manifest["examples"] = examples[0].uri
        base, name = exec_properties["base_directory"], exec_properties["model_name"]
        target = find_pushed(base, name, model.uri)
        if target:
            logging.info("ServingPusher: %s is already pushed as %s", model.uri, target)
        else:
            target = push_directory(path_utils.serving_model_path(model.uri), base, name, manifest)
        pushed.set_int_custom_property("pushed", 1)
        pushed.set_string_custom_property("pushed_destination", target)
        pushed.set_int_custom_property("pushed_version", int(target.rstrip("/").rsplit("/", 1)[-1]))
        logging.info("ServingPusher: pushed %s", target)
