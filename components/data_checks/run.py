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
import json
import os

from components import fileio
from components.data_checks import boxes as boxes_lib
from components.data_checks import checks as checks_lib
from components.data_checks import duplicates, readers

DETECTION = "detection"  # summary.json's task (ImageExampleGen's tasks.py) whose checks are boxes.py's.


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
    examples_uri: str = "",
    baseline_boxes: str = "",
) -> dict:
    """Every check of one run; the dict written as checks.json.

    ``baseline_pixels`` is the baseline span's pixel table in the statistics store (store.py), for
    near duplicates across spans; ``baseline_examples`` its examples, named for the report. The
    task is the ingestion's (summary.json): for detection the label checks are asked of the boxes,
    read from ``examples_uri``, and compared with ``baseline_boxes`` (the store's boxes.json).
    """
    summary = readers.read_summary(catalog_uri)
    rows = readers.read_catalog(catalog_uri)
    detection = summary.get("task") == DETECTION
    found = checks_lib.catalog_checks(rows, options, summary.get("labels", ()), by_label=not detection)
    pixels = summary.get("pixels") or {}
    near_duplicates: dict = {"note": "no pixel properties in this span (ingest.pixel_properties: false)"}
    classes: list = []
    confirmed: list | None = None
    if pixels.get("measured"):
        distance = int(pixels["thresholds"]["near_duplicate"])
        confirmed = _confirmed(rows, summary, options, distance)
        earlier = readers.read_pixels(baseline_pixels) if baseline_pixels else []
        near_duplicates, leaked = checks_lib.near_duplicate_leakage(
            rows, distance, options, earlier, baseline_span if baseline_pixels else None, confirmed
        )
        near_duplicates["baseline_examples"] = baseline_examples or None
        near_duplicates["baseline_pixels"] = baseline_pixels or None
        if not baseline_pixels:
            near_duplicates["note"] = (
                "no earlier span's pixel table: near duplicates compared across splits only"
            )
        # Detection has no class per image to set apart (its boxes' shapes are compared instead).
        classes, apart = checks_lib.property_imbalance(rows, options) if not detection else ([], [])
        found += leaked + apart
    conflicts = None
    if not detection:  # One image under two labels; detection has no label per image.
        conflicts, conflicting = checks_lib.label_conflict(rows, options, confirmed or ())
        found += conflicting
    objects = None
    if detection:
        objects, boxed = _box_checks(
            rows, summary, options, examples_uri, baseline_boxes, baseline_span if baseline_boxes else None
        )
        found += boxed
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
    if objects and objects["drift"]:
        drift["features"] = drift["features"] + objects["drift"]
        drift.pop("note", None)
        drift["baseline_span"] = baseline_span
    return {
        "span": span,
        "options": options.to_dict(),
        "summary": summary,
        "anomalies": [dataclasses.asdict(a) | {"title": a.title} for a in found],
        "drift": drift,
        "near_duplicates": near_duplicates,
        "property_classes": classes,
        **({"label_conflicts": conflicts} if conflicts is not None else {}),
        **({"objects": objects} if objects is not None else {}),
        **checks_lib.decide(found, options.gate),
    }


def _confirmed(
    rows: list[dict], summary: dict, options: checks_lib.CheckOptions, distance: int
) -> list | None:
    """Near-duplicate pairs confirmed on the images (duplicates.py), read from the ingestion's root
    through fileio (catalog paths are relative to it, or absolute, or URIs); None when the summary
    names no root (an older ingestion): the pHash rule alone then."""
    root = summary.get("root")
    if not root:
        return None

    def read(path: str) -> bytes:
        full = path if fileio.is_uri(path) or os.path.isabs(path) else os.path.join(root, path)
        with fileio.open(full, "rb") as f:
            return f.read()

    confirm = duplicates.ConfirmOptions(options.near_duplicate_candidates, options.near_duplicate_confirm)
    return duplicates.confirmed_pairs(rows, duplicates.Confirmer(read, confirm), fallback_distance=distance)


def _box_checks(
    rows: list[dict],
    summary: dict,
    options: checks_lib.CheckOptions,
    examples_uri: str,
    baseline_boxes: str,
    baseline_span: int | None,
) -> tuple[dict, list[checks_lib.Anomaly]]:
    """Detection's checks (boxes.py) and checks.json's ``objects``: each split's box distributions,
    the previous span's, the comparisons, and the catalog's box issues."""
    splits = sorted({r["split"] for r in rows if r["status"] == "ingested" and r["split"]})
    images = boxes_lib.read_boxes(examples_uri, splits) if examples_uri else []
    shape = boxes_lib.distributions(images, options.max_boxes_per_image)
    found = boxes_lib.box_checks(shape, options, summary.get("labels", ()))
    objects: dict = {
        "splits": shape,
        "skew": [
            {**row, "split": split}
            for split, d in shape.items()
            if split != "train" and "train" in shape
            for row in boxes_lib.compare_shapes(
                d, shape["train"], options.box_skew, checks_lib.BOX_SPLIT_SKEW
            )
        ],
        "drift": [],
        "baseline_span": None,
        "baseline": None,
        "issues": boxes_lib.box_issues(rows),
        "bins": {
            "aspect": list(boxes_lib.ASPECT_LABELS),
            "per_image": list(boxes_lib.COUNT_LABELS),
            "sizes": list(boxes_lib.SIZES),
        },
    }
    earlier = None
    if baseline_boxes and fileio.exists(baseline_boxes):
        with fileio.open(baseline_boxes) as f:
            earlier = json.load(f)
    split = options.drift_split
    if earlier and split in earlier and split in shape:
        objects["baseline"], objects["baseline_span"] = earlier, baseline_span
        objects["drift"], drifted = boxes_lib.compare_box_spans(shape[split], earlier[split], options)
        found += drifted
    else:
        objects["note"] = "no earlier span's boxes in the statistics store: box drift not compared"
    return objects, found
