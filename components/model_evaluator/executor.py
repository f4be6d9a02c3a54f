"""ModelEvaluator executor: TFX's Evaluator, with the served model (if any) as the baseline.

A detection EvalConfig (COCO metrics) gets its class ids here, from the examples' labels.txt.
"""

from __future__ import annotations

from absl import logging
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import artifact_utils, standard_component_specs

from components import kfp_ui
from components.model_evaluator import detection, spec
from components.model_evaluator.summary import overall_metrics
from components.served_model import spec as served_spec


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        served = [
            m
            for m in input_dict.get(spec.BASELINE_MODEL_KEY) or []
            if m.get_int_custom_property(served_spec.FOUND)
        ]
        input_dict = {**input_dict, spec.BASELINE_MODEL_KEY: served}
        config_key = standard_component_specs.EVAL_CONFIG_KEY
        if exec_properties.get(config_key):
            examples = artifact_utils.get_single_uri(input_dict[standard_component_specs.EXAMPLES_KEY])
            eval_config = detection.class_ids_from_labels(exec_properties[config_key], examples)
            exec_properties = {**exec_properties, config_key: eval_config}
        outputs = {key: value for key, value in output_dict.items() if key != spec.METRICS_KEY}
        super().Do(input_dict, outputs, exec_properties)

        blessing = artifact_utils.get_single_instance(output_dict[spec.BLESSING_KEY])
        figures = overall_metrics(artifact_utils.get_single_uri(output_dict[spec.EVALUATION_KEY]))
        table = artifact_utils.get_single_instance(output_dict[spec.METRICS_KEY])
        for name, value in figures.items():
            table.set_float_custom_property(name, value)
        table.set_int_custom_property("blessed", blessing.get_int_custom_property("blessed"))
        table.set_string_custom_property(kfp_ui.DISPLAY_NAME_KEY, "evaluation (eval split)")
        if served:
            version = served[0].get_int_custom_property(served_spec.SERVED_VERSION)
            blessing.set_int_custom_property(spec.BASELINE_VERSION, version)
            table.set_int_custom_property(spec.BASELINE_VERSION, version)
        logging.info("ModelEvaluator: %s against %s", figures, served[0].uri if served else "no served model")
