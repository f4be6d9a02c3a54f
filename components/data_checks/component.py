"""DataChecks (image-aware checks + drift, writes checks.json) and DataGate (stops a failing run).

checks = DataChecks(examples=..., catalog=..., statistics=..., schema=..., anomalies=...,
                    options=CheckOptions(), baseline_statistics="")
gate = DataGate(checks=checks.outputs["checks"], report=report.outputs["report"])
trainer.add_upstream_node(gate)
"""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.data_checks.checks import CheckOptions
from components.data_checks.executor import ChecksExecutor, GateExecutor
from components.image_example_gen.component import ImageCatalog
from components.validation_report.component import DataCheckResults, ValidationReport


class DataChecksSpec(types.ComponentSpec):
    PARAMETERS = {
        "options": ExecutionParameter(type=str),
        # Statistics artifact URI of a previous span; "" = no drift comparison.
        "baseline_statistics": ExecutionParameter(type=str, optional=True),
        "baseline_span": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "catalog": ChannelParameter(type=ImageCatalog),
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies),
    }
    OUTPUTS = {"checks": ChannelParameter(type=DataCheckResults)}


class DataChecks(base_component.BaseComponent):
    SPEC_CLASS = DataChecksSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ChecksExecutor)

    def __init__(
        self,
        examples,
        catalog,
        statistics,
        schema,
        anomalies,
        options: CheckOptions,
        baseline_statistics: str = "",
        baseline_span: int | None = None,
    ):
        super().__init__(
            DataChecksSpec(
                examples=examples,
                catalog=catalog,
                statistics=statistics,
                schema=schema,
                anomalies=anomalies,
                options=json.dumps(options.to_dict(), sort_keys=True),
                baseline_statistics=baseline_statistics or "",
                baseline_span=baseline_span,
                checks=types.Channel(type=DataCheckResults),
            )
        )


class DataGateSpec(types.ComponentSpec):
    PARAMETERS = {}
    INPUTS = {
        "checks": ChannelParameter(type=DataCheckResults),
        "report": ChannelParameter(type=ValidationReport),
    }
    OUTPUTS = {"gate": ChannelParameter(type=standard_artifacts.InfraBlessing)}


class DataGate(base_component.BaseComponent):
    """Fails (so nothing downstream runs) when checks.json's verdict blocks training."""

    SPEC_CLASS = DataGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(GateExecutor)

    def __init__(self, checks, report):
        super().__init__(
            DataGateSpec(
                checks=checks, report=report, gate=types.Channel(type=standard_artifacts.InfraBlessing)
            )
        )
