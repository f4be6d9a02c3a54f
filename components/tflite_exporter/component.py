"""TFLiteExporter: quantised TFLite variants with metadata, checked against the float model.

exporter = TFLiteExporter(model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
                          modes=["float32", "int8"], model_name="cvpipe", author="cvpipe")

A classifier's variants are gated on ``max_accuracy_drop`` and ``min_agreement``, a detector's
(float32 and int8 only) on ``max_map_drop``, the largest COCO mAP@0.5 drop against the SavedModel
on the eval split. The executor tells them apart by the SavedModel's model_params.json.

``author`` goes into each model's metadata; its version there is "unpushed" until the EdgePusher
stamps in the version it pushes the model as.
"""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.artifacts import TFLiteModel
from components.tflite_exporter import spec
from components.tflite_exporter.convert import MODES
from components.tflite_exporter.executor import Executor


class TFLiteExporterSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.MODES_KEY: ExecutionParameter(type=str),  # JSON list of MODES.
        spec.REPRESENTATIVE_COUNT_KEY: ExecutionParameter(type=int),
        spec.MAX_ACCURACY_DROP_KEY: ExecutionParameter(type=float),
        spec.MIN_AGREEMENT_KEY: ExecutionParameter(type=float),
        spec.MAX_MAP_DROP_KEY: ExecutionParameter(type=float),
        spec.MODEL_NAME_KEY: ExecutionParameter(type=str),
        spec.AUTHOR_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {spec.TFLITE_MODEL_KEY: ChannelParameter(type=TFLiteModel)}


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
        max_map_drop: float = spec.DEFAULT_MAX_MAP_DROP,
        model_name: str = "cvpipe",
        author: str = spec.DEFAULT_AUTHOR,
    ):
        modes = list(modes)
        unknown = [m for m in modes if m not in MODES]
        if not modes or unknown:
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes}")
        if representative_count < 1:
            raise ValueError("representative_count must be positive")
        if not 0 <= min_agreement <= 1 or max_accuracy_drop < 0:
            raise ValueError("min_agreement must be 0-1 and max_accuracy_drop >= 0")
        if not 0 <= max_map_drop <= 1:
            raise ValueError(f"max_map_drop (a COCO mAP@0.5 difference) must be 0-1, got {max_map_drop}")
        if not author or not author.strip():
            raise ValueError("author (the TFLite metadata's author) must be a non-empty string")
        super().__init__(
            TFLiteExporterSpec(
                **{
                    spec.MODEL_KEY: model,
                    spec.EXAMPLES_KEY: examples,
                    spec.MODES_KEY: json.dumps(modes),
                    spec.REPRESENTATIVE_COUNT_KEY: representative_count,
                    spec.MAX_ACCURACY_DROP_KEY: float(max_accuracy_drop),
                    spec.MIN_AGREEMENT_KEY: float(min_agreement),
                    spec.MAX_MAP_DROP_KEY: float(max_map_drop),
                    spec.MODEL_NAME_KEY: model_name,
                    spec.AUTHOR_KEY: author,
                    spec.TFLITE_MODEL_KEY: types.Channel(type=TFLiteModel),
                }
            )
        )
