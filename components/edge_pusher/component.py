"""EdgePusher: pushes the TFLite variants when both the model and the edge artefact are blessed.

Writes ``<base_directory>/<model_name>/<version>/`` (the same version number as the serving push)
with the .tflite files, labels.txt, parity.json and a manifest, atomically.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.edge_pusher.executor import Executor
from components.tflite_exporter.spec import TFLiteModel


class EdgePusherSpec(types.ComponentSpec):
    PARAMETERS = {
        "base_directory": ExecutionParameter(type=str),
        "model_name": ExecutionParameter(type=str),
    }
    INPUTS = {
        "tflite_model": ChannelParameter(type=TFLiteModel),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel),
    }
    OUTPUTS = {"pushed_edge_model": ChannelParameter(type=standard_artifacts.PushedModel)}


class EdgePusher(base_component.BaseComponent):
    SPEC_CLASS = EdgePusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, tflite_model, model_blessing, pushed_model, base_directory: str, model_name: str):
        if not base_directory or not model_name or "/" in model_name:
            raise ValueError("base_directory and a plain model_name are required")
        super().__init__(
            EdgePusherSpec(
                tflite_model=tflite_model,
                model_blessing=model_blessing,
                pushed_model=pushed_model,
                base_directory=base_directory,
                model_name=model_name,
                pushed_edge_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )
