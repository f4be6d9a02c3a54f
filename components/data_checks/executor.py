"""Executors of DataChecks and DataGate: thin glue around run.run_checks and checks.json."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.data_checks import checks as checks_lib
from components.data_checks import spec
from components.data_checks import store as store_lib
from components.data_checks.run import run_checks
from components.validation_report.spec import REPORT_FILE


class DataGateError(RuntimeError):
    """The data failed validation and the gate is set to stop the run before training."""


class ChecksExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        statistics_uri = artifact_utils.get_single_uri(input_dict[spec.STATISTICS_KEY])
        out = artifact_utils.get_single_instance(output_dict[spec.CHECKS_KEY])
        options = checks_lib.CheckOptions.from_dict(json.loads(exec_properties[spec.OPTIONS_KEY]))
        store = exec_properties.get(spec.STATISTICS_STORE_KEY) or ""
        baseline, baseline_span = exec_properties.get(spec.BASELINE_STATISTICS_KEY) or "", None
        baseline_pixels = baseline_examples = baseline_boxes = ""
        if not baseline and store:  # A configured baseline wins; else the last span that passed.
            stored = store_lib.baseline_for(store, examples.span)
            if stored:
                baseline, baseline_span = stored.uri, stored.span
                baseline_pixels, baseline_examples = stored.pixels, stored.examples
                baseline_boxes = stored.boxes
        catalog_uri = artifact_utils.get_single_uri(input_dict[spec.CATALOG_KEY])
        result = run_checks(
            catalog_uri=catalog_uri,
            statistics_uri=statistics_uri,
            schema_uri=artifact_utils.get_single_uri(input_dict[spec.SCHEMA_KEY]),
            anomalies_uri=artifact_utils.get_single_uri(input_dict[spec.ANOMALIES_KEY]),
            options=options,
            span=examples.span,
            baseline_statistics=baseline,
            baseline_span=baseline_span,
            baseline_pixels=baseline_pixels,
            baseline_examples=baseline_examples,
            examples_uri=examples.uri,
            baseline_boxes=baseline_boxes,
        )
        tf.io.gfile.makedirs(out.uri)
        with tf.io.gfile.GFile(os.path.join(out.uri, spec.CHECKS_FILE), "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
        if store:
            store_lib.publish(
                store,
                examples.span,
                statistics_uri,
                result["verdict"],
                catalog_uri,
                examples.uri,
                boxes=result.get("objects", {}).get("splits"),
            )
        out.set_string_custom_property("verdict", result["verdict"])
        out.set_int_custom_property("blocks_training", int(result["blocks_training"]))
        logging.info("DataChecks: %s (%s)", result["verdict"], result["reason"])


def gate_message(result: dict, report_path: str | None) -> str:
    blocking = [a for a in result["anomalies"] if a["severity"] == checks_lib.ERROR]
    lines = [
        f"{spec.GATE_MARKER} the data failed validation, so training did not start ({result['reason']})."
    ]
    lines += [f"  - {a['title']}: {a['description']}" for a in blocking]
    if report_path:
        lines.append(f"Report: {report_path}")
    lines.append("Fix the data, or set validation.gate: warn to train anyway.")
    return "\n".join(lines)


class GateExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        checks_uri = artifact_utils.get_single_uri(input_dict[spec.CHECKS_KEY])
        report_uri = artifact_utils.get_single_uri(input_dict[spec.REPORT_KEY])
        out = artifact_utils.get_single_instance(output_dict[spec.GATE_KEY])
        with tf.io.gfile.GFile(os.path.join(checks_uri, spec.CHECKS_FILE)) as f:
            result = json.load(f)
        if result["blocks_training"]:
            raise DataGateError(gate_message(result, os.path.join(report_uri, REPORT_FILE)))
        if result["verdict"] == "fail":
            logging.warning("DataGate: warn-only, training continues: %s", result["reason"])
        out.set_int_custom_property("blessed", 1)
        out.set_string_custom_property("verdict", result["verdict"])
