"""ValidationReportGen's workflow: one run's artifacts in; the HTML report (and the verdict) out.

`cvpipe report RUN_DIR` calls build_report on an existing run's artifacts.

    >>> build_report(examples_uri=..., catalog_uri=..., statistics_uri=..., schema_uri=...,
    ...              checks_uri=..., out_path="review.html")
    'review.html'
"""

from __future__ import annotations

import datetime
import json
import os

from components import fileio
from components.data_checks import readers
from components.data_checks import spec as checks_spec
from components.validation_report import objects as objects_lib
from components.validation_report.render import ReportInputs, quality_shown, render_report, scan_thumbnails


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
    model_review_href: str = "",
) -> str:
    """Renders the report of one run's artifacts to ``out_path``; returns the path.

    ``model_review_href`` links the page to the model review (`cvpipe report` writes both).
    """
    with fileio.open(os.path.join(checks_uri, checks_spec.CHECKS_FILE)) as f:
        checks = json.load(f)
    splits = readers.split_names(statistics_uri)
    ordered = sorted(splits, key=lambda s: (s != "train", s))
    catalog = readers.read_catalog(catalog_uri)
    shown = quality_shown(catalog, checks)
    # One read of the examples for the class samples and the images the quality sections show.
    boxed_samples, boxed_images = None, {}
    if "objects" in checks:  # Detection (DataChecks' boxes.py): thumbnails with their boxes.
        boxed_samples, boxed_images = objects_lib.scan_boxed_thumbnails(
            examples_uri,
            sorted(readers.split_names(examples_uri), key=lambda s: (s != "train", s)),
            per_class=thumbnails_per_class,
            max_classes=max_thumbnail_classes,
            wanted=shown.paths() | objects_lib.wanted_paths(checks),
        )
        samples, images = {}, {path: boxed.uri for path, boxed in boxed_images.items()}
    else:
        samples, images = scan_thumbnails(
            examples_uri,
            ordered,
            per_class=thumbnails_per_class,
            max_classes=max_thumbnail_classes,
            wanted=shown.paths(),
        )
    pairs = checks.get("near_duplicates", {})
    baseline_pixels = _optional(readers.read_pixels, pairs.get("baseline_pixels"), [])
    baseline_thumbnails = {}
    if shown.baseline_paths() and pairs.get("baseline_examples"):
        baseline_examples = pairs["baseline_examples"]
        baseline_thumbnails = _optional(
            lambda uri: scan_thumbnails(
                uri,
                readers.split_names(uri),
                per_class=0,
                max_classes=0,
                wanted=shown.baseline_paths(),
            )[1],
            baseline_examples,
            {},
        )
    inputs = ReportInputs(
        checks=checks,
        catalog=catalog,
        statistics={s: st for s in splits if (st := readers.read_statistics(statistics_uri, s)) is not None},
        schema_text=readers.schema_text(schema_uri),
        thumbnails=samples,
        image_thumbnails=images,
        baseline_thumbnails=baseline_thumbnails,
        baseline_pixels=baseline_pixels,
        pipeline_name=pipeline_name,
        generated_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        dataset=checks.get("summary", {}).get("root", ""),
        model_review_href=model_review_href,
        boxed_samples=boxed_samples,
        boxed_images=boxed_images,
    )
    page = render_report(inputs)
    parent = os.path.dirname(out_path)
    if parent:
        fileio.makedirs(parent)
    temporary = f"{out_path}.tmp"
    with fileio.open(temporary, "w") as f:
        f.write(page)
    fileio.rename(temporary, out_path, overwrite=True)
    return out_path


def _optional(read, uri: str | None, default):
    """What ``read(uri)`` returns, or ``default`` when there is no uri or it is gone.

    The previous span's pixel table and examples are read for the report only: a span whose
    artifacts were cleaned up since leaves its pairs without thumbnails, not the report unwritten.
    """
    if not uri or not fileio.exists(uri):
        return default
    return read(uri)


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
