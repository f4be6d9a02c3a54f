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

from components.serving_pusher import spec
from components.serving_pusher.push import find_pushed, push_directory


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        pushed = artifact_utils.get_single_instance(output_dict[spec.PUSHED_MODEL_KEY])
        blessing = artifact_utils.get_single_instance(input_dict[spec.MODEL_BLESSING_KEY])
        model = artifact_utils.get_single_instance(input_dict[spec.MODEL_KEY])
        if not blessing.get_int_custom_property(spec.BLESSED):
            logging.warning("ServingPusher: model %s is not blessed; nothing pushed", model.uri)
            pushed.set_int_custom_property(spec.PUSHED, 0)
            return
        manifest: dict[str, Any] = {"source_model": model.uri, "blessing": blessing.uri}
        runs = input_dict.get(spec.MODEL_RUN_KEY) or []
        if runs:
            metrics_path = os.path.join(runs[0].uri, spec.METRICS_FILE)
            if tf.io.gfile.exists(metrics_path):
                with tf.io.gfile.GFile(metrics_path) as f:
                    manifest["metrics"] = json.load(f)
        examples = input_dict.get(spec.EXAMPLES_KEY) or []
        if examples:
            manifest["data_span"] = examples[0].span
            manifest["examples"] = examples[0].uri
        base, name = exec_properties[spec.BASE_DIRECTORY_KEY], exec_properties[spec.MODEL_NAME_KEY]
        target = find_pushed(base, name, model.uri)
        if target:
            logging.info("ServingPusher: %s is already pushed as %s", model.uri, target)
        else:
            target = push_directory(path_utils.serving_model_path(model.uri), base, name, manifest)
        pushed.set_int_custom_property(spec.PUSHED, 1)
        pushed.set_string_custom_property(spec.PUSHED_DESTINATION, target)
        pushed.set_int_custom_property(spec.PUSHED_VERSION, int(target.rstrip("/").rsplit("/", 1)[-1]))
        logging.info("ServingPusher: pushed %s", target)
