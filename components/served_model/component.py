"""ServedModel: the model being served now, as a Model artifact (the baseline and the warm start).

served = ServedModel(examples=example_gen.outputs["examples"], base_directory="gs://b/serving",
                     model_name="cvpipe")
evaluator = ModelEvaluator(..., baseline_model=served.outputs["model"])

It replaces TFX's LatestBlessedModelResolver, which Kubeflow Pipelines' open-source backend cannot
run (resolver executors are Vertex-only). ``examples`` only ties it to the data: it looks again
whenever new data arrives, and an unchanged rerun reuses its output from the cache.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.served_model import spec
from components.served_model.executor import Executor


class ServedModelSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.BASE_DIRECTORY_KEY: ExecutionParameter(type=str),
        spec.MODEL_NAME_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ServedModel(base_component.BaseComponent):
    """The newest complete version under ``base_directory/model_name``, copied; empty if none.

    Args:
      examples: the run's examples (when they change, the lookup runs again).
      base_directory: where ServingPusher pushes (any filesystem URI).
      model_name: the served model's name.
    """

    SPEC_CLASS = ServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples, base_directory: str, model_name: str):
        if not base_directory or not model_name:
            raise ValueError("ServedModel needs base_directory and model_name")
        super().__init__(
            ServedModelSpec(
                **{
                    spec.EXAMPLES_KEY: examples,
                    spec.BASE_DIRECTORY_KEY: base_directory,
                    spec.MODEL_NAME_KEY: model_name,
                    spec.MODEL_KEY: types.Channel(type=standard_artifacts.Model),
                }
            )
        )
