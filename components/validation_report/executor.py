"""ValidationReportGen executor, and build_report() which `cvpipe report` also uses."""

from __future__ import annotations

import datetime
import json
import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components import kfp_ui
from components.data_checks import readers
from components.data_checks import spec as checks_spec
from components.validation_report import spec
from components.validation_report.render import ReportInputs, render_report, sample_thumbnails


def build_report(
    *,
    examples_uri: str,
    catalog_uri: str,
    statistics_uri: str,
    schema_uri: str,
    checks_uri: str,
    out_path: str,
    pipeline_name: str = "cvpipe",
    thumbnails_per_class: int = 8,
    max_thumbnail_classes: int = 60,
) -> str:
    """Renders the report of one run's artifacts to ``out_path``; returns the path."""
    with tf.io.gfile.GFile(os.path.join(checks_uri, checks_spec.CHECKS_FILE)) as f:
        checks = json.load(f)
    splits = readers.split_names(statistics_uri)
    ordered = sorted(splits, key=lambda s: (s != "train", s))
    inputs = ReportInputs(
        checks=checks,
        catalog=readers.read_catalog(catalog_uri),
        statistics={s: st for s in splits if (st := readers.read_statistics(statistics_uri, s)) is not None},
        schema_text=readers.schema_text(schema_uri),
        thumbnails=sample_thumbnails(
            examples_uri, ordered, per_class=thumbnails_per_class, max_classes=max_thumbnail_classes
        )
        if thumbnails_per_class > 0
        else {},
        pipeline_name=pipeline_name,
        generated_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        dataset=checks.get("summary", {}).get("root", ""),
    )
    page = render_report(inputs)
    parent = os.path.dirname(out_path)
    if parent:
        tf.io.gfile.makedirs(parent)
    temporary = f"{out_path}.tmp"
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(page)
    tf.io.gfile.rename(temporary, out_path, overwrite=True)
    return out_path


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


def verdict_markdown(checks: dict, report_path: str) -> str:
    """The verdict, the reason and every anomaly as a Markdown table."""
    lines = [
        f"# Data validation: {checks['verdict'].upper()}",
        "",
        f"{checks['reason']}. Span {checks.get('span')}; full report: `{report_path}`.",
        "",
    ]
    anomalies = checks.get("anomalies", [])
    if anomalies:
        lines += ["| severity | check | split | feature | description |", "|---|---|---|---|---|"]
        for a in sorted(anomalies, key=lambda a: a["severity"] != "error"):
            cells = [
                a["severity"],
                a["check"],
                a.get("split") or "",
                a.get("feature") or "",
                a["description"],
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    else:
        lines.append("No anomalies.")
    return "\n".join(lines) + "\n"
