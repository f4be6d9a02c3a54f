"""ModelEvaluator: TFX's Evaluator against the served model, plus a metrics table for Kubeflow's UI.

served = ServedModel(examples=..., base_directory="gs://b/serving", model_name="cvpipe")
evaluator = ModelEvaluator(examples=..., model=trainer.outputs["model"],
                           baseline_model=served.outputs["model"], eval_config=eval_config)

The baseline is ServedModel's artifact: when nothing is served yet it is empty, and the candidate
is judged by the value thresholds alone (TFX's rubber stamp); otherwise the change thresholds apply
against the served version, whose number the blessing records (``baseline_version``).
"""

from __future__ import annotations

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from components.kfp_ui import MetricsTable
from components.model_evaluator import spec
from components.model_evaluator.executor import Executor


class ModelEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    OUTPUTS = {
        **standard_component_specs.EvaluatorSpec.OUTPUTS,
        spec.METRICS_KEY: ChannelParameter(type=MetricsTable),
    }


class ModelEvaluator(base_beam_component.BaseBeamComponent):
    SPEC_CLASS = ModelEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self, examples, model, baseline_model, eval_config: tfma.EvalConfig, example_splits=("eval",)
    ):
        super().__init__(
            ModelEvaluatorSpec(
                examples=examples,
                model=model,
                baseline_model=baseline_model,
                eval_config=eval_config,
                example_splits=json_utils.dumps(list(example_splits)),
                fairness_indicator_thresholds=json_utils.dumps(None),
                evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
                blessing=types.Channel(type=standard_artifacts.ModelBlessing),
                metrics=types.Channel(type=MetricsTable),
            )
        )
