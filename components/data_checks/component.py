"""DataChecks (image-aware checks + drift, writes checks.json) and DataGate (stops a failing run).

checks = DataChecks(examples=..., catalog=..., statistics=..., schema=..., anomalies=...,
                    options=CheckOptions(), statistics_store="gs://b/root/statistics/cvpipe")
gate = DataGate(checks=checks.outputs["checks"], report=report.outputs["report"])
trainer.add_upstream_node(gate)
"""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.artifacts import DataCheckResults, ImageCatalog, ValidationReport
from components.data_checks import spec
from components.data_checks.checks import CheckOptions
from components.data_checks.executor import ChecksExecutor, GateExecutor

# What the data half produced, read by DataChecks and by ValidationReportGen.
DATA_INPUTS = {
    spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    spec.CATALOG_KEY: ChannelParameter(type=ImageCatalog),
    spec.STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
    spec.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
}


class DataChecksSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.OPTIONS_KEY: ExecutionParameter(type=str),
        spec.BASELINE_STATISTICS_KEY: ExecutionParameter(type=str, optional=True),
        spec.STATISTICS_STORE_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {**DATA_INPUTS, spec.ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
    OUTPUTS = {spec.CHECKS_KEY: ChannelParameter(type=DataCheckResults)}


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
        statistics_store: str = "",
    ):
        super().__init__(
            DataChecksSpec(
                **{
                    spec.EXAMPLES_KEY: examples,
                    spec.CATALOG_KEY: catalog,
                    spec.STATISTICS_KEY: statistics,
                    spec.SCHEMA_KEY: schema,
                    spec.ANOMALIES_KEY: anomalies,
                    spec.OPTIONS_KEY: json.dumps(options.to_dict(), sort_keys=True),
                    spec.BASELINE_STATISTICS_KEY: baseline_statistics or "",
                    spec.STATISTICS_STORE_KEY: statistics_store,
                    spec.CHECKS_KEY: types.Channel(type=DataCheckResults),
                }
            )
        )


class DataGateSpec(types.ComponentSpec):
    PARAMETERS = {}
    INPUTS = {
        spec.CHECKS_KEY: ChannelParameter(type=DataCheckResults),
        spec.REPORT_KEY: ChannelParameter(type=ValidationReport),
    }
    OUTPUTS = {spec.GATE_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing)}


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
