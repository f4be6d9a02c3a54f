"""DataChecks' workflow: one run's catalog, statistics, schema and anomalies in; checks.json's dict out.

>>> result = run_checks(catalog_uri="ImageExampleGen/catalog/3", statistics_uri="StatisticsGen/...",
...                     schema_uri="SchemaGen/...", anomalies_uri="ExampleValidator/...",
...                     options=CheckOptions(), span=3, baseline_statistics="", baseline_span=None)
>>> result["verdict"], result["blocks_training"]
('pass', False)
"""

from __future__ import annotations

import dataclasses

from components.data_checks import checks as checks_lib
from components.data_checks import readers


def run_checks(
    *,
    catalog_uri: str,
    statistics_uri: str,
    schema_uri: str,
    anomalies_uri: str,
    options: checks_lib.CheckOptions,
    span: int | None = None,
    baseline_statistics: str = "",
    baseline_span: int | None = None,
) -> dict:
    """Every check of one run; the dict written as checks.json."""
    summary = readers.read_summary(catalog_uri)
    found = checks_lib.catalog_checks(readers.read_catalog(catalog_uri), options, summary.get("labels", ()))
    found += checks_lib.tfdv_anomalies(readers.read_schema_diffs(anomalies_uri))
    drift = {
        "baseline_statistics": baseline_statistics or None,
        "baseline_span": baseline_span,
        "features": [],
    }
    if baseline_statistics:
        current = readers.read_statistics(statistics_uri, options.drift_split)
        baseline = readers.read_statistics(baseline_statistics, options.drift_split)
        if current is None or baseline is None:
            drift["note"] = f"no {options.drift_split} statistics in one of the spans; drift not compared"
        else:
            rows, drifted = checks_lib.compare_spans(
                current, baseline, readers.read_schema(schema_uri), options
            )
            drift["features"] = rows
            found += drifted
    else:
        drift["note"] = "no previous span: drift not compared"
    return {
        "span": span,
        "options": options.to_dict(),
        "summary": summary,
        "anomalies": [dataclasses.asdict(a) | {"title": a.title} for a in found],
        "drift": drift,
        **checks_lib.decide(found, options.gate),
    }
