"""DataChecks' workflow: one run's catalog, statistics, schema and anomalies in; checks.json's dict out.

>>> result = run_checks(catalog_uri="ImageExampleGen/catalog/3", statistics_uri="StatisticsGen/...",
...                     schema_uri="SchemaGen/...", anomalies_uri="ExampleValidator/...",
...                     options=CheckOptions(), span=3, baseline_statistics="", baseline_span=None,
...                     baseline_pixels="")
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
    baseline_pixels: str = "",
    baseline_examples: str = "",
) -> dict:
    """Every check of one run; the dict written as checks.json.

    ``baseline_pixels`` is the baseline span's pixel table in the statistics store (store.py), for
    near duplicates across spans; ``baseline_examples`` its examples, named for the report.
    """
    summary = readers.read_summary(catalog_uri)
    rows = readers.read_catalog(catalog_uri)
    found = checks_lib.catalog_checks(rows, options, summary.get("labels", ()))
    pixels = summary.get("pixels") or {}
    near_duplicates: dict = {"note": "no pixel properties in this span (ingest.pixel_properties: false)"}
    classes: list = []
    if pixels.get("measured"):
        distance = int(pixels["thresholds"]["near_duplicate"])
        earlier = readers.read_pixels(baseline_pixels) if baseline_pixels else []
        near_duplicates, leaked = checks_lib.near_duplicate_leakage(
            rows, distance, options, earlier, baseline_span if baseline_pixels else None
        )
        near_duplicates["baseline_examples"] = baseline_examples or None
        near_duplicates["baseline_pixels"] = baseline_pixels or None
        if not baseline_pixels:
            near_duplicates["note"] = (
                "no earlier span's pixel table: near duplicates compared across splits only"
            )
        classes, apart = checks_lib.property_imbalance(rows, options)
        found += leaked + apart
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
            compared, drifted = checks_lib.compare_spans(
                current, baseline, readers.read_schema(schema_uri), options
            )
            drift["features"] = compared
            found += drifted
            if pixels.get("measured") and not any(r["check"] == checks_lib.PROPERTY_DRIFT for r in compared):
                drift["property_note"] = (
                    "the previous span has no pixel properties: property drift not compared"
                )
    else:
        drift["note"] = "no previous span: drift not compared"
    return {
        "span": span,
        "options": options.to_dict(),
        "summary": summary,
        "anomalies": [dataclasses.asdict(a) | {"title": a.title} for a in found],
        "drift": drift,
        "near_duplicates": near_duplicates,
        "property_classes": classes,
        **checks_lib.decide(found, options.gate),
    }
