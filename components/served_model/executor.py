"""ServedModel executor: find the served version, copy it into the Model artifact, record which."""

from __future__ import annotations

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.served_model import lookup, spec


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        model = artifact_utils.get_single_instance(output_dict[spec.MODEL_KEY])
        served = lookup.latest_served(
            exec_properties[spec.BASE_DIRECTORY_KEY], exec_properties[spec.MODEL_NAME_KEY]
        )
        if served is None:
            logging.info("ServedModel: nothing served yet under %s", exec_properties[spec.BASE_DIRECTORY_KEY])
            model.set_int_custom_property(spec.FOUND, 0)
            return
        lookup.copy_model(served, path_utils.serving_model_dir(model.uri))
        model.set_int_custom_property(spec.FOUND, 1)
        model.set_int_custom_property(spec.SERVED_VERSION, served.version)
        model.set_string_custom_property(spec.SERVED_PATH, served.path)
        model.set_string_custom_property(spec.SOURCE_MODEL, served.manifest.get("source_model", ""))
        logging.info("ServedModel: version %d (%s)", served.version, served.path)
