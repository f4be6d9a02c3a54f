"""`cvpipe report RUN_DIR`: the data-validation report and the model review of an existing local run.

reports = write_reports("out/run")    # out/run/validation_report.html and out/run/model_review.html
reports.data, reports.model           # The model review is None when the run trained no model.
path = write_report("out/run", "review.html")   # The data report's path; the model review beside it

Reads ML Metadata and the artifacts (local or any URI) without importing TFX or TensorFlow: the
model review is rendered again from its review.json.
"""

from __future__ import annotations

import dataclasses
import json
import os

from components import fileio
from components.model_review import spec as review_spec
from components.model_review.render import render_review
from components.validation_report.report import build_report
from pipelines import metadata
from pipelines.nodes import (
    DATA_CHECKS,
    EXAMPLE_GEN,
    METADATA_FILE,
    MODEL_REVIEW,
    SCHEMA_GEN,
    STATISTICS_GEN,
)

DATA_REPORT_FILE = "validation_report.html"


@dataclasses.dataclass
class Reports:
    data: str  # The data-validation report.
    model: str | None  # The model review beside it; None when the run has none for these examples.


def write_reports(run_dir: str, out_path: str | None = None) -> Reports:
    """Renders the latest run's data report to ``out_path`` and its model review beside it.

    The two pages link to each other. The model review is written only when the latest ModelReview
    reviewed a model trained on the same examples as the data report shows.
    """
    metadata_path = os.path.join(run_dir, METADATA_FILE)
    if not os.path.exists(metadata_path):
        raise FileNotFoundError(f"{run_dir} has no {METADATA_FILE}: not the output directory of `cvpipe run`")
    store = metadata.open_store(metadata_path)
    names = sorted(c.name for c in store.get_contexts_by_type("pipeline"))
    if not names:
        raise FileNotFoundError(f"{metadata_path} records no pipeline run")
    _, outputs = metadata.latest_outputs(metadata_path, names[0])
    try:
        uris = dict(
            examples_uri=outputs[EXAMPLE_GEN]["examples"][0],
            catalog_uri=outputs[EXAMPLE_GEN]["catalog"][0],
            statistics_uri=outputs[STATISTICS_GEN]["statistics"][0],
            schema_uri=outputs[SCHEMA_GEN]["schema"][0],
            checks_uri=outputs[DATA_CHECKS]["checks"][0],
        )
    except KeyError as e:
        raise FileNotFoundError(
            f"{run_dir}: no completed {e.args[0]} output; run `cvpipe run` first"
        ) from None
    data_path = out_path or os.path.join(run_dir, DATA_REPORT_FILE)
    review_path = os.path.join(os.path.dirname(data_path), review_spec.PAGE_FILE)
    if os.path.abspath(review_path) == os.path.abspath(data_path):
        raise ValueError(f"--out {data_path}: that name is the model review's; choose another")
    review = _model_review(store, names[0], uris["examples_uri"])
    build_report(
        **uris,
        out_path=data_path,
        pipeline_name=names[0],
        model_review_href=review_spec.PAGE_FILE if review else "",
    )
    if review is None:
        return Reports(data_path, None)
    page = render_review(review, data_report_href=os.path.basename(data_path))
    temporary = f"{review_path}.tmp"
    with fileio.open(temporary, "w") as f:
        f.write(page)
    fileio.rename(temporary, review_path, overwrite=True)
    return Reports(data_path, review_path)


def write_report(run_dir: str, out_path: str | None = None) -> str:
    """The data report's path of :func:`write_reports` (which writes the model review too)."""
    return write_reports(run_dir, out_path).data


def _model_review(store, pipeline_name: str, examples_uri: str) -> dict | None:
    """review.json of the latest ModelReview whose examples are ``examples_uri``, or None."""
    executions = metadata.node_executions(store, pipeline_name).get(MODEL_REVIEW, [])
    for execution in reversed(executions):
        if execution.last_known_state not in (metadata.COMPLETE, metadata.CACHED):
            continue
        inputs = metadata.artifacts_by_key(store, execution.id, metadata.INPUT)
        if [a.uri for a in inputs.get(review_spec.EXAMPLES_KEY, [])] != [examples_uri]:
            return None  # The latest review is of a model trained on other examples.
        reviews = metadata.artifacts_by_key(store, execution.id, metadata.OUTPUT).get(review_spec.REVIEW_KEY)
        path = os.path.join(reviews[0].uri, review_spec.REVIEW_FILE) if reviews else ""
        if not path or not fileio.exists(path):
            return None
        with fileio.open(path) as f:
            return json.load(f)
    return None
