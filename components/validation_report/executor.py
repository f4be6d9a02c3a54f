"""ValidationReportGen executor, and build_report() which `cvpipe report` also uses."""

from __future__ import annotations

import datetime
import json
import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.data_checks import readers
from components.validation_report.render import ReportInputs, render_report, sample_thumbnails

CHECKS_FILE = "checks.json"
REPORT_FILE = "index.html"


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
    with tf.io.gfile.GFile(os.path.join(checks_uri, CHECKS_FILE)) as f:
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
        out = artifact_utils.get_single_instance(output_dict["report"])
        path = build_report(
            examples_uri=artifact_utils.get_single_uri(input_dict["examples"]),
            catalog_uri=artifact_utils.get_single_uri(input_dict["catalog"]),
            statistics_uri=artifact_utils.get_single_uri(input_dict["statistics"]),
            schema_uri=artifact_utils.get_single_uri(input_dict["schema"]),
            checks_uri=artifact_utils.get_single_uri(input_dict["checks"]),
            out_path=os.path.join(out.uri, REPORT_FILE),
            pipeline_name=exec_properties["pipeline_name"],
            thumbnails_per_class=exec_properties["thumbnails_per_class"],
            max_thumbnail_classes=exec_properties["max_thumbnail_classes"],
        )
        logging.info("ValidationReportGen: wrote %s", path)
