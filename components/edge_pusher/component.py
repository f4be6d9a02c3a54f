"""EdgePusher: pushes the TFLite variants when both the model and the edge artefact are blessed.

Writes ``<base_directory>/<model_name>/<version>/`` (the same version number as the serving push)
with the .tflite files, labels.txt, parity.json and a manifest, atomically.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.artifacts import TFLiteModel
from components.edge_pusher import spec
from components.edge_pusher.executor import Executor


class EdgePusherSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.BASE_DIRECTORY_KEY: ExecutionParameter(type=str),
        spec.MODEL_NAME_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        spec.TFLITE_MODEL_KEY: ChannelParameter(type=TFLiteModel),
        spec.MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        spec.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel),
    }
    OUTPUTS = {spec.PUSHED_EDGE_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel)}


class EdgePusher(base_component.BaseComponent):
    SPEC_CLASS = EdgePusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, tflite_model, model_blessing, pushed_model, base_directory: str, model_name: str):
        if not base_directory or not model_name or "/" in model_name:
            raise ValueError("base_directory and a plain model_name are required")
        super().__init__(
            EdgePusherSpec(
                **{
                    spec.TFLITE_MODEL_KEY: tflite_model,
                    spec.MODEL_BLESSING_KEY: model_blessing,
                    spec.PUSHED_MODEL_KEY: pushed_model,
                    spec.BASE_DIRECTORY_KEY: base_directory,
                    spec.MODEL_NAME_KEY: model_name,
                    spec.PUSHED_EDGE_MODEL_KEY: types.Channel(type=standard_artifacts.PushedModel),
                }
            )
        )
