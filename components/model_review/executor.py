"""ModelReviewGen executor: unpack the artifacts, run run.review_model, record the page for the UI."""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import kfp_ui
from components.model_review import spec
from components.model_review.run import review_model


def _optional_uri(input_dict, key: str) -> str | None:
    artifacts = input_dict.get(key) or []
    return artifact_utils.get_single_uri(artifacts) if artifacts else None


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        out = artifact_utils.get_single_instance(output_dict[spec.REVIEW_KEY])
        review = review_model(
            examples_uri=artifact_utils.get_single_uri(input_dict[spec.EXAMPLES_KEY]),
            serving_dir=path_utils.serving_model_path(
                artifact_utils.get_single_uri(input_dict[spec.MODEL_KEY])
            ),
            model_run_uri=artifact_utils.get_single_uri(input_dict[spec.MODEL_RUN_KEY]),
            out_dir=out.uri,
            tflite_uri=_optional_uri(input_dict, spec.TFLITE_MODEL_KEY),
            tuner_results_uri=_optional_uri(input_dict, spec.TUNER_RESULTS_KEY),
            blessing_uri=_optional_uri(input_dict, spec.BLESSING_KEY),
            pipeline_name=exec_properties[spec.PIPELINE_NAME_KEY],
        )
        headline = ("accuracy", "map50", "map")  # A classifier's, a detector's.
        logging.info(
            "ModelReviewGen: %s",
            {s["split"]: {k: s[k] for k in headline if k in s} for s in review["splits"]},
        )
        # The same page as the artifact the Kubeflow UI displays.
        page = artifact_utils.get_single_instance(output_dict[spec.PAGE_KEY])
        tf.io.gfile.makedirs(page.uri)
        tf.io.gfile.copy(
            os.path.join(out.uri, spec.PAGE_FILE), os.path.join(page.uri, spec.PAGE_FILE), overwrite=True
        )
        page.set_string_custom_property(kfp_ui.FILE_KEY, spec.PAGE_FILE)
        page.set_string_custom_property(kfp_ui.DISPLAY_NAME_KEY, "model review")
