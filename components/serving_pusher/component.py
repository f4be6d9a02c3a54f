"""ServingPusher: pushes a blessed model to the TF Serving layout, atomically, with a manifest.

pusher = ServingPusher(model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                       model_run=trainer.outputs["model_run"], examples=example_gen.outputs["examples"],
                       base_directory="out/serving", model_name="cvpipe")
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.serving_pusher import spec
from components.serving_pusher.executor import Executor


class ServingPusherSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.BASE_DIRECTORY_KEY: ExecutionParameter(type=str),
        spec.MODEL_NAME_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        spec.MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        spec.MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun, optional=True),
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {spec.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel)}


class ServingPusher(base_component.BaseComponent):
    SPEC_CLASS = ServingPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self, model, model_blessing, base_directory: str, model_name: str, model_run=None, examples=None
    ):
        if not base_directory:
            raise ValueError("base_directory is required")
        if not model_name or "/" in model_name or model_name.startswith("."):
            raise ValueError(f"model_name must be a plain directory name, got {model_name!r}")
        super().__init__(
            ServingPusherSpec(
                **{
                    spec.MODEL_KEY: model,
                    spec.MODEL_BLESSING_KEY: model_blessing,
                    spec.MODEL_RUN_KEY: model_run,
                    spec.EXAMPLES_KEY: examples,
                    spec.BASE_DIRECTORY_KEY: base_directory,
                    spec.MODEL_NAME_KEY: model_name,
                    spec.PUSHED_MODEL_KEY: types.Channel(type=standard_artifacts.PushedModel),
                }
            )
        )
