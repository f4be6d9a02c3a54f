"""ValidationReport component: renders index.html from the data half's artifacts.

report = ValidationReportGen(examples=..., catalog=..., statistics=..., schema=...,
                             checks=checks.outputs["checks"], pipeline_name="cvpipe")
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.artifacts import DataCheckResults, ValidationReport
from components.data_checks import spec as checks_spec
from components.data_checks.component import DATA_INPUTS
from components.kfp_ui import HTMLPage, MarkdownText
from components.validation_report import spec
from components.validation_report.executor import Executor


class ValidationReportGenSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.PIPELINE_NAME_KEY: ExecutionParameter(type=str),
        spec.THUMBNAILS_PER_CLASS_KEY: ExecutionParameter(type=int),
        spec.MAX_THUMBNAIL_CLASSES_KEY: ExecutionParameter(type=int),
    }
    INPUTS = {**DATA_INPUTS, checks_spec.CHECKS_KEY: ChannelParameter(type=DataCheckResults)}
    OUTPUTS = {
        spec.REPORT_KEY: ChannelParameter(type=ValidationReport),
        spec.PAGE_KEY: ChannelParameter(type=HTMLPage),
        spec.VERDICT_KEY: ChannelParameter(type=MarkdownText),
    }


class ValidationReportGen(base_component.BaseComponent):
    SPEC_CLASS = ValidationReportGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples,
        catalog,
        statistics,
        schema,
        checks,
        pipeline_name: str,
        thumbnails_per_class: int = 8,
        max_thumbnail_classes: int = 60,
    ):
        super().__init__(
            ValidationReportGenSpec(
                **{
                    checks_spec.EXAMPLES_KEY: examples,
                    checks_spec.CATALOG_KEY: catalog,
                    checks_spec.STATISTICS_KEY: statistics,
                    checks_spec.SCHEMA_KEY: schema,
                    checks_spec.CHECKS_KEY: checks,
                    spec.PIPELINE_NAME_KEY: pipeline_name,
                    spec.THUMBNAILS_PER_CLASS_KEY: thumbnails_per_class,
                    spec.MAX_THUMBNAIL_CLASSES_KEY: max_thumbnail_classes,
                    spec.REPORT_KEY: types.Channel(type=ValidationReport),
                    spec.PAGE_KEY: types.Channel(type=HTMLPage),
                    spec.VERDICT_KEY: types.Channel(type=MarkdownText),
                }
            )
        )
