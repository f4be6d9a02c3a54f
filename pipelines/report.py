"""`cvpipe report RUN_DIR`: the data-validation report of an existing local run, rendered again.

path = write_report("out/run")              # out/run/validation_report.html
path = write_report("out/run", "review.html")

Reads ML Metadata and the artifacts (local or any URI) without importing TFX or TensorFlow.
"""

from __future__ import annotations

import os

from components.validation_report.report import build_report
from pipelines import metadata
from pipelines.nodes import DATA_CHECKS, EXAMPLE_GEN, METADATA_FILE, SCHEMA_GEN, STATISTICS_GEN


def write_report(run_dir: str, out_path: str | None = None) -> str:
    """Renders the data-validation report of the latest run in ``run_dir`` (its ML Metadata)."""
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
    return build_report(
        **uris, out_path=out_path or os.path.join(run_dir, "validation_report.html"), pipeline_name=names[0]
    )
