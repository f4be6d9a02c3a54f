"""TFLiteExporter executor: unpack the artifacts, run export_variants, record the blessing.

The same for a classifier and a detector: ``export_variants`` picks the task from the SavedModel.
"""

from __future__ import annotations

import json

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.tflite_exporter import spec
from components.tflite_exporter.export import export_variants
from components.tflite_exporter.spec import PARITY_FILE

__all__ = ["Executor", "export_variants", "PARITY_FILE"]  # The last two: older imports from here.


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        model = artifact_utils.get_single_instance(input_dict[spec.MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        out = artifact_utils.get_single_instance(output_dict[spec.TFLITE_MODEL_KEY])
        parity = export_variants(
            path_utils.serving_model_path(model.uri),
            examples.uri,
            out.uri,
            modes=json.loads(exec_properties[spec.MODES_KEY]),
            representative_count=exec_properties[spec.REPRESENTATIVE_COUNT_KEY],
            max_accuracy_drop=exec_properties[spec.MAX_ACCURACY_DROP_KEY],
            min_agreement=exec_properties[spec.MIN_AGREEMENT_KEY],
            max_map_drop=exec_properties.get(spec.MAX_MAP_DROP_KEY, spec.DEFAULT_MAX_MAP_DROP),
            model_name=exec_properties[spec.MODEL_NAME_KEY],
            author=exec_properties[spec.AUTHOR_KEY],
        )
        out.set_int_custom_property(spec.BLESSED, int(parity["blessed"]))
        out.set_string_custom_property(spec.SOURCE_MODEL, model.uri)
