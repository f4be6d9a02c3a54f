"""ValidationReport component: renders index.html from the data half's artifacts.

report = ValidationReportGen(examples=..., catalog=..., statistics=..., schema=...,
                             checks=checks.outputs["checks"], pipeline_name="cvpipe")
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.image_example_gen.component import ImageCatalog
from components.validation_report.executor import Executor


class ValidationReport(types.Artifact):
    """index.html: the self-contained data-validation report."""

    TYPE_NAME = "cvpipe.ValidationReport"


class DataCheckResults(types.Artifact):
    """checks.json: every anomaly (cvpipe's, TFDV's, drift), the drift table and the verdict."""

    TYPE_NAME = "cvpipe.DataCheckResults"


class ValidationReportGenSpec(types.ComponentSpec):
    PARAMETERS = {
        "pipeline_name": ExecutionParameter(type=str),
        "thumbnails_per_class": ExecutionParameter(type=int),
        "max_thumbnail_classes": ExecutionParameter(type=int),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "catalog": ChannelParameter(type=ImageCatalog),
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "checks": ChannelParameter(type=DataCheckResults),
    }
    OUTPUTS = {"report": ChannelParameter(type=ValidationReport)}


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
                examples=examples,
                catalog=catalog,
                statistics=statistics,
                schema=schema,
                checks=checks,
                pipeline_name=pipeline_name,
                thumbnails_per_class=thumbnails_per_class,
                max_thumbnail_classes=max_thumbnail_classes,
                report=types.Channel(type=ValidationReport),
            )
        )
