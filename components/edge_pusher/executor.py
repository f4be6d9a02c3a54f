"""EdgePusher executor: both blessings, then an atomic push under the serving version."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.edge_pusher import spec
from components.edge_pusher.publish import push_edge_model
from components.serving_pusher.push import find_pushed
from components.tflite_exporter import spec as tflite_spec


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        tflite = artifact_utils.get_single_instance(input_dict[spec.TFLITE_MODEL_KEY])
        blessing = artifact_utils.get_single_instance(input_dict[spec.MODEL_BLESSING_KEY])
        serving = artifact_utils.get_single_instance(input_dict[spec.PUSHED_MODEL_KEY])
        out = artifact_utils.get_single_instance(output_dict[spec.PUSHED_EDGE_MODEL_KEY])
        reasons = []
        if not blessing.get_int_custom_property(spec.BLESSED):
            reasons.append("the model is not blessed by the Evaluator")
        if not tflite.get_int_custom_property(tflite_spec.BLESSED):
            reasons.append(f"the TFLite variants failed the parity gate (see {tflite_spec.PARITY_FILE})")
        if not serving.get_int_custom_property(spec.PUSHED):
            reasons.append("the serving model was not pushed")
        if reasons:
            logging.warning("EdgePusher: nothing pushed: %s", "; ".join(reasons))
            out.set_int_custom_property(spec.PUSHED, 0)
            out.set_string_custom_property(spec.REASON, "; ".join(reasons))
            return
        base, name = exec_properties[spec.BASE_DIRECTORY_KEY], exec_properties[spec.MODEL_NAME_KEY]
        target = find_pushed(base, name, tflite.uri)
        if not target:
            with tf.io.gfile.GFile(os.path.join(tflite.uri, tflite_spec.PARITY_FILE)) as f:
                parity = json.load(f)
            version = serving.get_int_custom_property(spec.PUSHED_VERSION)
            manifest = {
                "source_model": tflite.uri,
                "serving_model": serving.get_string_custom_property(spec.PUSHED_DESTINATION),
                "source_model_version": version,
                "metrics": parity,
            }
            target = push_edge_model(tflite.uri, base, name, manifest, version)
        out.set_int_custom_property(spec.PUSHED, 1)
        out.set_string_custom_property(spec.PUSHED_DESTINATION, target)
        logging.info("EdgePusher: pushed %s", target)
