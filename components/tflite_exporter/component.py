"""TFLiteExporter: quantised TFLite variants with metadata, checked against the float model.

exporter = TFLiteExporter(model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
                          modes=["float32", "int8"], model_name="cvpipe")
"""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.tflite_exporter.convert import MODES
from components.tflite_exporter.executor import Executor
from components.tflite_exporter.spec import TFLiteModel


class TFLiteExporterSpec(types.ComponentSpec):
    PARAMETERS = {
        "modes": ExecutionParameter(type=str),  # JSON list of MODES.
        "representative_count": ExecutionParameter(type=int),
        "max_accuracy_drop": ExecutionParameter(type=float),
        "min_agreement": ExecutionParameter(type=float),
        "model_name": ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {"tflite_model": ChannelParameter(type=TFLiteModel)}


class TFLiteExporter(base_component.BaseComponent):
    SPEC_CLASS = TFLiteExporterSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        model,
        examples,
        modes=("int8",),
        representative_count: int = 300,
        max_accuracy_drop: float = 0.01,
        min_agreement: float = 0.98,
        model_name: str = "cvpipe",
    ):
        modes = list(modes)
        unknown = [m for m in modes if m not in MODES]
        if not modes or unknown:
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes}")
        if representative_count < 1:
            raise ValueError("representative_count must be positive")
        if not 0 <= min_agreement <= 1 or max_accuracy_drop < 0:
            raise ValueError("min_agreement must be 0-1 and max_accuracy_drop >= 0")
        super().__init__(
            TFLiteExporterSpec(
                model=model,
                examples=examples,
                modes=json.dumps(modes),
                representative_count=representative_count,
                max_accuracy_drop=float(max_accuracy_drop),
                min_agreement=float(min_agreement),
                model_name=model_name,
                tflite_model=types.Channel(type=TFLiteModel),
            )
        )
