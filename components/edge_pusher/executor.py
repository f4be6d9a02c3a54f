"""EdgePusher executor: both blessings, then an atomic push under the serving version."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.serving_pusher.push import find_pushed, push_directory
from components.tflite_exporter.spec import PARITY_FILE


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        tflite = artifact_utils.get_single_instance(input_dict["tflite_model"])
        blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        serving = artifact_utils.get_single_instance(input_dict["pushed_model"])
        out = artifact_utils.get_single_instance(output_dict["pushed_edge_model"])
        reasons = []
        if not blessing.get_int_custom_property("blessed"):
            reasons.append("the model is not blessed by the Evaluator")
        if not tflite.get_int_custom_property("blessed"):
            reasons.append("the TFLite variants failed the parity gate (see parity.json)")
        if not serving.get_int_custom_property("pushed"):
            reasons.append("the serving model was not pushed")
        if reasons:
            logging.warning("EdgePusher: nothing pushed: %s", "; ".join(reasons))
            out.set_int_custom_property("pushed", 0)
            out.set_string_custom_property("reason", "; ".join(reasons))
            return
        base, name = exec_properties["base_directory"], exec_properties["model_name"]
        target = find_pushed(base, name, tflite.uri)
        if not target:
            with tf.io.gfile.GFile(os.path.join(tflite.uri, PARITY_FILE)) as f:
                parity = json.load(f)
            version = serving.get_int_custom_property("pushed_version")
            manifest = {
                "source_model": tflite.uri,
                "serving_model": serving.get_string_custom_property("pushed_destination"),
                "source_model_version": version,
                "metrics": parity,
            }
            try:  # Same version number as the serving model it was converted from...
                target = push_directory(tflite.uri, base, name, manifest, version=version)
            except FileExistsError:  # ...unless another edge artefact of that model is there.
                target = push_directory(tflite.uri, base, name, manifest)
        out.set_int_custom_property("pushed", 1)
        out.set_string_custom_property("pushed_destination", target)
        logging.info("EdgePusher: pushed %s", target)
