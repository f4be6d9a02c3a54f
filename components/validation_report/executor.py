"""ValidationReportGen executor: unpack the artifacts, run report.build_report, record the pages."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components import kfp_ui
from components.data_checks import spec as checks_spec
from components.validation_report import spec
from components.validation_report.report import build_report, verdict_markdown

__all__ = ["Executor", "build_report", "verdict_markdown"]  # build_report: older imports from here.


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        out = artifact_utils.get_single_instance(output_dict[spec.REPORT_KEY])
        path = build_report(
            examples_uri=artifact_utils.get_single_uri(input_dict[checks_spec.EXAMPLES_KEY]),
            catalog_uri=artifact_utils.get_single_uri(input_dict[checks_spec.CATALOG_KEY]),
            statistics_uri=artifact_utils.get_single_uri(input_dict[checks_spec.STATISTICS_KEY]),
            schema_uri=artifact_utils.get_single_uri(input_dict[checks_spec.SCHEMA_KEY]),
            checks_uri=artifact_utils.get_single_uri(input_dict[checks_spec.CHECKS_KEY]),
            out_path=os.path.join(out.uri, spec.REPORT_FILE),
            pipeline_name=exec_properties[spec.PIPELINE_NAME_KEY],
            thumbnails_per_class=exec_properties[spec.THUMBNAILS_PER_CLASS_KEY],
            max_thumbnail_classes=exec_properties[spec.MAX_THUMBNAIL_CLASSES_KEY],
        )
        logging.info("ValidationReportGen: wrote %s", path)
        # The same page, and the verdict as Markdown, as the artifacts Kubeflow's UI displays.
        page = artifact_utils.get_single_instance(output_dict[spec.PAGE_KEY])
        tf.io.gfile.makedirs(page.uri)
        tf.io.gfile.copy(path, os.path.join(page.uri, spec.REPORT_FILE), overwrite=True)
        page.set_string_custom_property(kfp_ui.FILE_KEY, spec.REPORT_FILE)
        page.set_string_custom_property(kfp_ui.DISPLAY_NAME_KEY, "data validation report")
        verdict = artifact_utils.get_single_instance(output_dict[spec.VERDICT_KEY])
        checks_uri = artifact_utils.get_single_uri(input_dict[checks_spec.CHECKS_KEY])
        with tf.io.gfile.GFile(os.path.join(checks_uri, checks_spec.CHECKS_FILE)) as f:
            markdown = verdict_markdown(json.load(f), path)
        tf.io.gfile.makedirs(verdict.uri)
        with tf.io.gfile.GFile(os.path.join(verdict.uri, spec.VERDICT_FILE), "w") as f:
            f.write(markdown)
        verdict.set_string_custom_property(kfp_ui.FILE_KEY, spec.VERDICT_FILE)
        verdict.set_string_custom_property(kfp_ui.DISPLAY_NAME_KEY, "data validation verdict")
