"""Renders the data-validation report: one HTML file with inline CSS and SVG, no script, no fetch.

html = render_report(ReportInputs(checks=..., catalog=rows, statistics={"train": stats}, ...))

Everything a reviewer needs to decide whether the data is fit to train on is in the file: the
verdict and the gate's reason, the accounting of every input file, counts and sample thumbnails per
class, what the pixels show (each quality flag with example thumbnails, near-duplicate pairs side by
side, pixel-property histograms per split and against the previous span, and per class), feature
statistics with histograms, every anomaly, the drift against the previous span and the schema.
Long tables and thumbnail rows are capped (the catalog has every row) so the file stays small.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import html
import io
import os
import statistics as pystats
from typing import Any, Iterable

from tensorflow_metadata.proto.v0 import statistics_pb2

from components import fileio, tfrecords
from components.image_example_gen import spec

MAX_QUARANTINE_ROWS = 500
MAX_DUPLICATE_ROWS = 200
MAX_SIZE_ROWS = 12
MAX_FLAG_THUMBNAILS = 8  # Example thumbnails per quality flag.
MAX_PAIRS = 12  # Near-duplicate pairs shown per kind (across splits, within a split, across spans).
MAX_PROPERTY_CLASSES = 60  # Rows of the per-class property table.
HISTOGRAM_BINS = 20


@dataclasses.dataclass
class ReportInputs:
    checks: dict[str, Any]  # checks.json of DataChecks.
    catalog: list[dict[str, Any]]  # Catalog rows (see components.data_checks.readers).
    statistics: dict[str, statistics_pb2.DatasetFeatureStatisticsList]  # Split -> TFDV statistics.
    schema_text: str
    thumbnails: dict[str, list[tuple[str, str]]]  # Label -> [(data URI, path)].
    pipeline_name: str = "cvpipe"
    generated_at: str = ""
    dataset: str = ""
    model_review_href: str = ""  # The model review page, linked from the header when set.
    # Thumbnails by path of the images the quality sections show (see wanted_paths), this span's
    # and the previous span's (near duplicates across spans).
    image_thumbnails: dict[str, str] = dataclasses.field(default_factory=dict)
    baseline_thumbnails: dict[str, str] = dataclasses.field(default_factory=dict)
    baseline_pixels: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # Previous span's.
    # Object detection (objects.py): sample thumbnails per class with their boxes (None for a
    # classification report, which shows the Classes section instead), and boxed images by path.
    boxed_samples: dict[str, list[Any]] | None = None
    boxed_images: dict[str, Any] = dataclasses.field(default_factory=dict)


def thumbnail_uri(image_bytes: bytes, size: int = 64) -> str:
    """A small re-encoded JPEG as a data URI."""
    from PIL import Image

    with Image.open(io.BytesIO(image_bytes)) as image:
        image = image.convert("RGB")
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def sample_thumbnails(
    examples_uri: str, splits: Iterable[str], *, per_class: int, max_classes: int, size: int = 64
) -> dict[str, list[tuple[str, str]]]:
    """Up to ``per_class`` thumbnails for each of up to ``max_classes`` labels, read from the examples.

    Reads the splits in order and stops once every label of the ingestion's vocabulary (its
    labels.txt, up to ``max_classes`` of them) has ``per_class`` samples, so a large dataset is not
    read in full unless a class is rare; without a vocabulary every split is read. The records are
    read without TensorFlow (components.tfrecords), so `cvpipe report` starts fast.
    """
    return scan_thumbnails(examples_uri, splits, per_class=per_class, max_classes=max_classes, size=size)[0]


def scan_thumbnails(
    examples_uri: str,
    splits: Iterable[str],
    *,
    per_class: int,
    max_classes: int,
    wanted: Iterable[str] = (),
    size: int = 64,
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """sample_thumbnails' samples per class, and the thumbnails of the ``wanted`` paths, in one read.

    Stops once the classes are full (as sample_thumbnails) and every wanted path is found.
    """
    vocabulary = os.path.join(examples_uri, spec.LABELS_FILE)
    expected = None
    if fileio.exists(vocabulary):
        with fileio.open(vocabulary) as f:
            expected = min(max_classes, sum(1 for line in f if line.strip()))
    missing = set(wanted)
    by_path: dict[str, str] = {}
    if per_class <= 0 and not missing:
        return {}, by_path

    found: dict[str, list[tuple[str, str]]] = collections.OrderedDict()
    for split in splits:
        for file in sorted(fileio.glob(os.path.join(examples_uri, f"Split-{split}", "*"))):
            for example in tfrecords.read_examples(file, compression="GZIP"):
                # Only the class samples need a label (a detection example has none).
                keys = (spec.IMAGE, spec.LABEL, spec.PATH) if per_class > 0 else (spec.IMAGE, spec.PATH)
                image, *label, path = (_one_string(example, key, file) for key in keys)
                label = label[0].decode("utf-8", "replace") if label else ""
                path = path.decode("utf-8", "replace")
                if path in missing:
                    by_path[path] = thumbnail_uri(image, size)
                    missing.discard(path)
                if per_class > 0 and (label in found or len(found) < max_classes):
                    samples = found.setdefault(label, [])
                    if len(samples) < per_class:
                        samples.append((thumbnail_uri(image, size), path))
                if not missing and (per_class <= 0 or _full(found, expected, per_class)):
                    return dict(sorted(found.items())), by_path
    return dict(sorted(found.items())), by_path


def _one_string(example: dict[str, list], key: str, file: str) -> bytes:
    """The single bytes value of feature ``key``, as tf.io.FixedLenFeature([], tf.string) reads it."""
    values = example.get(key)
    if values is None or len(values) != 1 or not isinstance(values[0], bytes):
        raise tfrecords.CorruptRecordError(f"{file}: an Example without one string {key!r}: {values!r:.80}")
    return values[0]


def _full(found: dict[str, list], expected: int | None, per_class: int) -> bool:
    return (
        expected is not None and len(found) >= expected and all(len(s) >= per_class for s in found.values())
    )


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e12:
            return f"{int(value):,}"
        return f"{value:,.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(headers: list[str], rows: Iterable[list[str]], cls: str = "") -> str:
    """Rows are already-escaped HTML cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _bar(fraction: float, width: int = 120) -> str:
    filled = max(0.0, min(1.0, fraction)) * width
    return (
        f'<svg class="bar" width="{width}" height="10" role="img" aria-label="{fraction:.0%}">'
        f'<rect width="{width}" height="10" fill="#e8ecf1"/>'
        f'<rect width="{filled:.1f}" height="10" fill="#4a78b5"/></svg>'
    )


def _histogram_svg(buckets: list[tuple[float, float, float]], width: int = 180, height: int = 44) -> str:
    """Bars for (low, high, count) buckets, with the range printed under them."""
    if not buckets:
        return ""
    top = max(count for _, _, count in buckets) or 1.0
    step = width / len(buckets)
    bars = "".join(
        f'<rect x="{i * step + 0.5:.1f}" y="{height - count / top * height:.1f}" '
        f'width="{max(step - 1, 1):.1f}" height="{count / top * height:.1f}" fill="#4a78b5">'
        f"<title>{_fmt(low)} to {_fmt(high)}: {_fmt(count)}</title></rect>"
        for i, (low, high, count) in enumerate(buckets)
    )
    return (
        f'<svg class="hist" width="{width}" height="{height + 12}" role="img" aria-label="histogram">'
        f'<rect width="{width}" height="{height}" fill="#f4f6f9"/>{bars}'
        f'<text x="0" y="{height + 10}" font-size="9">{_e(_fmt(buckets[0][0]))}</text>'
        f'<text x="{width}" y="{height + 10}" font-size="9" text-anchor="end">'
        f"{_e(_fmt(buckets[-1][1]))}</text>"
        "</svg>"
    )


def _feature_rows(dataset: statistics_pb2.DatasetFeatureStatistics) -> list[list[str]]:
    rows = []
    total = dataset.num_examples
    for feature in sorted(dataset.features, key=lambda f: ".".join(f.path.step)):
        name = ".".join(feature.path.step) or feature.name
        kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
        if feature.HasField("num_stats"):
            s = feature.num_stats
            common = s.common_stats
            buckets = []
            for h in s.histograms:
                if h.type == statistics_pb2.Histogram.STANDARD:
                    buckets = [(b.low_value, b.high_value, b.sample_count) for b in h.buckets]
            summary = (
                f"min {_fmt(s.min)} · mean {_fmt(s.mean)} · max {_fmt(s.max)} · std {_fmt(s.std_dev)}"
                f"<br>zeros {_fmt(s.num_zeros)}"
            )
            detail = _histogram_svg(buckets)
        elif feature.HasField("string_stats"):
            s = feature.string_stats
            common = s.common_stats
            summary = f"unique {_fmt(s.unique)} · avg length {_fmt(s.avg_length)}"
            # Image bytes have no meaningful top values (TFDV lists them as __BYTES_VALUE__).
            top = [v for v in s.top_values if v.value != "__BYTES_VALUE__"][:8]
            most = max((v.frequency for v in top), default=1) or 1
            detail = "".join(
                f'<div class="top">{_bar(v.frequency / most, 60)} <code>{_e(_clip(v.value))}</code> '
                f"{_fmt(v.frequency)}</div>"
                for v in top
            )
        elif feature.HasField("bytes_stats"):
            s = feature.bytes_stats
            common = s.common_stats
            summary = (
                f"unique {_fmt(s.unique)} · bytes min {_fmt(s.min_num_bytes)} · "
                f"avg {_fmt(s.avg_num_bytes)} · max {_fmt(s.max_num_bytes)}"
            )
            detail = ""
        else:
            continue
        custom = [c for c in feature.custom_stats if c.HasField("num") or c.HasField("str")]
        if custom:
            detail += (
                "<div class='custom'>"
                + "<br>".join(
                    f"{_e(c.name)}: {_e(_fmt(c.num) if c.HasField('num') else c.str)}" for c in custom
                )
                + "</div>"
            )
        for c in feature.custom_stats:
            if c.HasField("rank_histogram"):
                values = ", ".join(
                    f"{_e(b.label)} {_fmt(b.sample_count)}" for b in list(c.rank_histogram.buckets)[:8]
                )
                detail += f"<div class='custom'>{_e(c.name)}: {values}</div>"
        missing = common.num_missing
        missing_cls = ' class="warn"' if missing else ""
        rows.append(
            [
                f"<code>{_e(name)}</code>",
                _e(kind),
                _fmt(common.num_non_missing),
                f"<span{missing_cls}>{_fmt(missing)} ({missing / total:.0%})</span>"
                if total
                else _fmt(missing),
                summary,
                detail,
            ]
        )
    return rows


def _clip(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _header(inputs: ReportInputs) -> str:
    checks = inputs.checks
    verdict = checks["verdict"]
    if verdict == "pass":
        headline = "PASS: the data is fit to train on"
    elif checks.get("blocks_training"):
        headline = "FAIL: training blocked by the data gate"
    else:
        headline = "FAIL: the gate is warn-only, so the run went on"
    summary = checks.get("summary", {})
    facts = [
        ("Dataset", inputs.dataset or summary.get("root", "")),
        ("Span", checks.get("span")),
        ("Pipeline", inputs.pipeline_name),
        ("Gate", checks.get("gate")),
        ("Generated", inputs.generated_at),
    ]
    facts_html = "".join(f"<div><span>{_e(k)}</span> {_e(v)}</div>" for k, v in facts)
    if inputs.model_review_href:
        facts_html += (
            f'<div><a id="model-review" href="{_e(inputs.model_review_href)}" style="color:#fff">'
            "Model review</a></div>"
        )
    return (
        f'<header class="verdict {verdict}"><h1 id="verdict">{_e(headline)}</h1>'
        f'<p class="reason">{_e(checks.get("reason", ""))}</p><div class="facts">{facts_html}</div></header>'
    )


def _accounting(inputs: ReportInputs) -> str:
    rows = inputs.catalog
    status = collections.Counter(r[spec.STATUS] for r in rows)
    cards = "".join(
        f'<div class="card"><b>{_fmt(n)}</b><span>{_e(name)}</span></div>'
        for name, n in (
            ("seen", len(rows)),
            ("ingested", status[spec.INGESTED]),
            ("quarantined", status[spec.QUARANTINED]),
            ("duplicates", status[spec.DUPLICATE]),
        )
    )
    quarantined = sorted((r for r in rows if r[spec.STATUS] == spec.QUARANTINED), key=lambda r: r[spec.PATH])
    reasons = collections.Counter(r[spec.REASON] for r in quarantined).most_common()
    body = f'<div class="cards">{cards}</div>'
    if reasons:
        body += "<h3>Quarantine reasons</h3>" + _table(
            ["reason", "files"], ([_e(reason), _fmt(n)] for reason, n in reasons), "narrow"
        )
        shown = quarantined[:MAX_QUARANTINE_ROWS]
        body += f"<h3>Quarantined files ({_fmt(len(quarantined))})</h3>" + _table(
            ["path", "reason", "detail", "label"],
            (
                [
                    f"<code>{_e(r[spec.PATH])}</code>",
                    _e(r[spec.REASON]),
                    _e(r[spec.DETAIL]),
                    _e(r[spec.LABEL]),
                ]
                for r in shown
            ),
        )
        if len(quarantined) > len(shown):
            body += f"<p class='note'>{_fmt(len(quarantined) - len(shown))} more in catalog.parquet.</p>"
    else:
        body += "<p>No file was quarantined.</p>"
    duplicates = sorted((r for r in rows if r[spec.STATUS] == spec.DUPLICATE), key=lambda r: r[spec.PATH])
    if duplicates:
        body += f"<h3>Duplicates dropped ({_fmt(len(duplicates))})</h3>" + _table(
            ["path", "same content as"],
            (
                [f"<code>{_e(r[spec.PATH])}</code>", f"<code>{_e(r[spec.DUPLICATE_OF])}</code>"]
                for r in duplicates[:MAX_DUPLICATE_ROWS]
            ),
        )
        if len(duplicates) > MAX_DUPLICATE_ROWS:
            body += (
                f"<p class='note'>{_fmt(len(duplicates) - MAX_DUPLICATE_ROWS)} more in catalog.parquet.</p>"
            )
    return _section("accounting", "Ingestion accounting", body)


def _anomalies(inputs: ReportInputs) -> str:
    anomalies = sorted(
        inputs.checks.get("anomalies", []),
        key=lambda a: (a["severity"] != "error", a["check"], a.get("split") or ""),
    )
    if not anomalies:
        return _section("anomalies", "Anomalies", "<p>No anomalies: every check passed.</p>")
    rows = (
        [
            f'<span class="sev {_e(a["severity"])}">{_e(a["severity"])}</span>',
            _e(a["check"]),
            _e(a.get("source")),
            _e(a.get("split")),
            f"<code>{_e(a.get('feature'))}</code>" if a.get("feature") else "",
            _e(a["description"]),
        ]
        for a in anomalies
    )
    return _section(
        "anomalies",
        f"Anomalies ({len(anomalies)})",
        _table(["severity", "check", "source", "split", "feature", "description"], rows),
    )


def _drift(inputs: ReportInputs) -> str:
    drift = inputs.checks.get("drift", {})
    rows = drift.get("features", [])
    if not rows:
        return _section(
            "drift", "Drift against the previous span", f"<p>{_e(drift.get('note', 'not compared'))}</p>"
        )
    source = drift.get("baseline_statistics")
    body = (
        f"<p>Split <code>{_e(inputs.checks.get('options', {}).get('drift_split', 'train'))}</code> of span "
        f"{_e(inputs.checks.get('span'))} against span {_e(drift.get('baseline_span'))}"
        + (f" (<code>{_e(source)}</code>)" if source else "")
        + ".</p>"
    )
    severities = inputs.checks.get("options", {}).get("severities", {})
    body += _table(
        ["feature", "comparator", "distance", "threshold", "result"],
        (
            [
                f"<code>{_e(r['feature'])}</code>",
                _e(r["comparator"]),
                _fmt(r["value"]),
                _fmt(r["threshold"]),
                f'<span class="sev {_e(severities.get(r.get("check"), "error"))}">drifted</span>'
                if r["drifted"]
                else "ok",
            ]
            for r in rows
        ),
        "narrow",
    )
    return _section("drift", "Drift against the previous span", body)


def _classes(inputs: ReportInputs) -> str:
    ingested = [r for r in inputs.catalog if r[spec.STATUS] == spec.INGESTED]
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in ingested:
        counts[r[spec.LABEL]][r[spec.SPLIT]] += 1
    splits = sorted({r[spec.SPLIT] for r in ingested}, key=lambda s: (s != "train", s != "eval", s))
    most = max((sum(c.values()) for c in counts.values()), default=1)
    rows = []
    for label in sorted(counts):
        total = sum(counts[label].values())
        rows.append(
            [f"<code>{_e(label)}</code>"]
            + [_fmt(counts[label][s]) for s in splits]
            + [f"{_fmt(total)} {_bar(total / most)}"]
        )
    totals = ["<b>all</b>"] + [f"<b>{_fmt(sum(c[s] for c in counts.values()))}</b>" for s in splits]
    rows.append(totals + [f"<b>{_fmt(len(ingested))}</b>"])
    body = _table(["class", *splits, "total"], rows, "narrow")
    source = (inputs.checks.get("summary") or {}).get("splits_from")
    if source:  # Split folders, a manifest's split column, or each image's content hash.
        body += f"<p class='note'>Splits from: <b>{_e(source)}</b>.</p>"
    if inputs.thumbnails:
        body += "<h3>Samples per class</h3>"
        for label, samples in inputs.thumbnails.items():
            images = "".join(
                f'<img src="{uri}" alt="{_e(path)}" title="{_e(path)}" width="64" height="64">'
                for uri, path in samples
            )
            body += f'<div class="thumbs"><div class="label"><code>{_e(label)}</code></div>{images}</div>'
        if len(inputs.thumbnails) < len(counts):
            body += f"<p class='note'>Thumbnails for the first {len(inputs.thumbnails)} classes only.</p>"
    return _section("classes", "Splits and classes", body)


def _images(inputs: ReportInputs) -> str:
    ingested = [r for r in inputs.catalog if r[spec.STATUS] == spec.INGESTED]
    if not ingested:
        return _section("images", "Image formats and sizes", "<p>No image was ingested.</p>")
    formats = collections.Counter((r[spec.ORIGINAL_FORMAT], r[spec.FORMAT]) for r in ingested).most_common()
    body = "<h3>Formats</h3>" + _table(
        ["original format", "stored as", "images"],
        ([_e(src), _e(dst), _fmt(n)] for (src, dst), n in formats),
        "narrow",
    )
    widths = [r[spec.WIDTH] for r in ingested]
    heights = [r[spec.HEIGHT] for r in ingested]
    body += "<h3>Sizes</h3>" + _table(
        ["", "min", "median", "max"],
        (
            [name, _fmt(min(values)), _fmt(pystats.median(values)), _fmt(max(values))]
            for name, values in (("width", widths), ("height", heights))
        ),
        "narrow",
    )
    sizes = collections.Counter(f"{r[spec.WIDTH]}×{r[spec.HEIGHT]}" for r in ingested).most_common()
    body += _table(
        ["width × height", "images"], ([_e(size), _fmt(n)] for size, n in sizes[:MAX_SIZE_ROWS]), "narrow"
    )
    if len(sizes) > MAX_SIZE_ROWS:
        body += f"<p class='note'>{_fmt(len(sizes) - MAX_SIZE_ROWS)} more sizes.</p>"
    return _section("images", "Image formats and sizes", body)


def _measured(catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in catalog if r[spec.STATUS] == spec.INGESTED and r.get(spec.BRIGHTNESS) is not None]


@dataclasses.dataclass
class QualityShown:
    """Which images the quality sections show: the report's reader of the examples fetches these."""

    flagged: dict[str, list[dict[str, Any]]]  # Flag -> its first images in path order.
    across_splits: list[dict[str, Any]]  # checks.json pairs: eval/test image ~ train image.
    within: list[tuple[dict[str, Any], dict[str, Any]]]  # Catalog near_duplicate_of, same split.
    across_spans: list[dict[str, Any]]  # checks.json pairs: this span's image ~ previous span's.
    # checks.json label_conflicts: one image under two labels (shown/twin_shown: the kept copies).
    label_conflicts: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def paths(self) -> set[str]:
        found = {r[spec.PATH] for rows in self.flagged.values() for r in rows}
        found |= {p[key] for p in self.across_splits for key in ("path", "twin")}
        found |= {r[spec.PATH] for pair in self.within for r in pair}
        found |= {p["path"] for p in self.across_spans}
        found |= {p[key] for p in self.label_conflicts for key in ("shown", "twin_shown")}
        return found

    def baseline_paths(self) -> set[str]:
        return {p["twin"] for p in self.across_spans}


def quality_shown(catalog: list[dict[str, Any]], checks: dict[str, Any]) -> QualityShown:
    measured = sorted(_measured(catalog), key=lambda r: r[spec.PATH])
    by_path = {r[spec.PATH]: r for r in measured}
    flagged = {name: [r for r in measured if r.get(name)][:MAX_FLAG_THUMBNAILS] for name in spec.FLAGS}
    pairs = checks.get("near_duplicates", {})
    across = pairs.get("across_splits", [])[:MAX_PAIRS]
    within = sorted(
        (
            (by_path[r[spec.NEAR_DUPLICATE_OF]], r)
            for r in measured
            if r.get(spec.NEAR_DUPLICATE_OF) in by_path
            and by_path[r[spec.NEAR_DUPLICATE_OF]][spec.SPLIT] == r[spec.SPLIT]
        ),
        key=lambda pair: (pair[1][spec.NEAR_DUPLICATE_DISTANCE], pair[1][spec.PATH]),
    )[:MAX_PAIRS]
    conflicts = (checks.get("label_conflicts") or {}).get("pairs", [])[:MAX_PAIRS]
    return QualityShown(flagged, across, within, pairs.get("across_spans", [])[:MAX_PAIRS], conflicts)


def _where(split: str, label: str | None) -> str:
    """A thumbnail's caption: its split and label (a detection image has no label)."""
    return split if label is None else f"{split} · {label}"


def _thumb(uri: str | None, path: str, caption: str, title: str = "") -> str:
    image = (
        f'<img src="{uri}" alt="{_e(path)}" width="64" height="64">'
        if uri
        else '<span class="noimg">no thumbnail</span>'
    )
    return (
        f'<figure title="{_e(title or path)}">{image}<figcaption><code>{_e(_clip(path, 28))}</code>'
        f"<br>{_e(caption)}</figcaption></figure>"
    )


def _quality(inputs: ReportInputs) -> str:
    measured = _measured(inputs.catalog)
    if not measured:
        return _section(
            "quality",
            "Image quality",
            "<p>No pixel properties were measured (<code>ingest.pixel_properties: false</code>, or no "
            "image was ingested).</p>",
        )
    shown = quality_shown(inputs.catalog, inputs.checks)
    thresholds = inputs.checks.get("summary", {}).get("pixels", {}).get("thresholds", {})
    splits = sorted({r[spec.SPLIT] for r in measured}, key=lambda s: (s != "train", s != "eval", s))
    meaning = {
        spec.DARK: "brightest 1% of pixels below {dark} of full brightness",
        spec.LIGHT: "darkest 5% of pixels above {light} of full brightness",
        spec.BLURRY: "sharpness below {blurry}x the dataset's median",
        spec.LOW_INFORMATION: "grey-level entropy below {low_information} bits",
        spec.ODD_ASPECT_RATIO: "longer side over {odd_aspect_ratio}x the shorter",
        spec.GRAYSCALE: "colourfulness below {grayscale} in a colour dataset",
        spec.NEAR_DUPLICATE_OF: "pHash within {near_duplicate} bits of an earlier image",
    }
    rows = []
    for name in (*spec.FLAGS, spec.NEAR_DUPLICATE_OF):
        hits = [r for r in measured if r.get(name)]
        counts = collections.Counter(r[spec.SPLIT] for r in hits)
        try:
            what = meaning[name].format(**thresholds)
        except KeyError:
            what = ""
        rows.append(
            [f"<code>{_e(name)}</code>", _fmt(len(hits)), f"{len(hits) / len(measured):.1%}"]
            + [_fmt(counts[s]) for s in splits]
            + [_e(what)]
        )
    body = (
        f"<p>Measured on the pixels decoded to verify each image: {_fmt(len(measured))} images. Every "
        "flag is a column of catalog.parquet, with its reason in <code>flag_reasons</code>.</p>"
    )
    body += _table(["flag", "images", "share", *splits, "flagged when"], rows, "narrow")
    for name, hits in shown.flagged.items():
        if not hits:
            continue
        total = sum(1 for r in measured if r.get(name))
        figures = "".join(
            _thumb(
                inputs.image_thumbnails.get(r[spec.PATH]),
                r[spec.PATH],
                _where(r[spec.SPLIT], r[spec.LABEL]),
                _reason(r, name),
            )
            for r in hits
        )
        more = f" (first {len(hits)} of {_fmt(total)})" if total > len(hits) else ""
        body += f'<h3 id="flag-{_e(name)}">{_e(name)}{more}</h3><div class="figs">{figures}</div>'
    return _section("quality", "Image quality", body)


def _reason(row: dict[str, Any], name: str) -> str:
    for part in (row.get(spec.FLAG_REASONS) or "").split("; "):
        if part.startswith(f"{name}: "):
            return part
    return name


def _pair(left: str, right: str, distance: Any, note: str = "", score: Any = None) -> str:
    confirmed = f"<br>confirming score <b>{score:.2f}</b>" if isinstance(score, (int, float)) else ""
    return (
        f'<div class="pair">{left}{right}<div class="dist">pHash distance <b>{_e(distance)}</b>{confirmed}'
        f"{'<br>' + _e(note) if note else ''}</div></div>"
    )


def _label_conflicts(inputs: ReportInputs, shown: QualityShown) -> str:
    """One image under two labels (label_conflict), the two side by side with their labels."""
    conflicts = inputs.checks.get("label_conflicts")
    if conflicts is None:
        return ""
    thumbs = inputs.image_thumbnails
    body = f"<h3>Label conflicts: one image under two labels ({_fmt(conflicts.get('count', 0))})</h3>"
    if not shown.label_conflicts:
        return body + "<p>None: no image appears under two labels.</p>"
    for c in shown.label_conflicts:
        identical = c["kind"] == "identical"
        body += _pair(
            _thumb(thumbs.get(c["shown"]), c["path"], _where(c["split"] or "?", c["label"])),
            _thumb(thumbs.get(c["twin_shown"]), c["twin"], _where(c["twin_split"] or "?", c["twin_label"])),
            c["distance"],
            "byte-identical" if identical else "near duplicate",
            None if identical else c.get("confirm_score"),
        )
    return body


def _near_duplicates(inputs: ReportInputs) -> str:
    pairs = inputs.checks.get("near_duplicates", {})
    shown = quality_shown(inputs.catalog, inputs.checks)
    if not _measured(inputs.catalog):  # Byte-identical label conflicts need no hash.
        none = "<p>No perceptual hashes were computed.</p>" + _label_conflicts(inputs, shown)
        return _section("near-duplicates", "Near duplicates", none)
    thumbs = inputs.image_thumbnails
    counts = pairs.get("counts", {})
    total_within = sum(1 for r in _measured(inputs.catalog) if r.get(spec.NEAR_DUPLICATE_OF))
    confirm = pairs.get("confirm")
    if confirm:
        body = (
            f"<p>Across splits: pairs whose 64-bit perceptual hashes (whole, or one's whole and the "
            f"other's centre) differ in at most {_e(confirm['candidate_distance'])} bits, confirmed on "
            "the images' pixels (correlation of "
            f"aligned thumbnails, crops searched: a score of at least {_e(confirm['min_score'])}), so that "
            "re-encoded, resized and slightly cropped copies are found and look-alikes are not. Within a "
            f"split and across spans: pHash within {_e(pairs.get('distance', '?'))} bits. "
        )
    else:
        body = (
            f"<p>Pairs whose 64-bit perceptual hashes differ in at most {_e(pairs.get('distance', '?'))} "
            "bits (a re-encoded, resized or slightly cropped copy, or a close look-alike). "
        )
    body += (
        "A byte-identical copy in another split is <code>split_leakage</code> (Anomalies); within a split "
        "it was dropped at ingestion.</p>"
    )
    leaked = _fmt(counts.get("across_splits", 0))
    body += f"<h3>Across splits: eval or test image beside its train twin ({leaked})</h3>"
    if shown.across_splits:
        body += "".join(
            _pair(
                _thumb(thumbs.get(p["path"]), p["path"], _where(p["split"], p["label"])),
                _thumb(thumbs.get(p["twin"]), p["twin"], _where("train", p["twin_label"])),
                p["distance"],
                "leaks into evaluation",
                p.get("confirm_score"),
            )
            for p in shown.across_splits
        )
    else:
        body += "<p>None: no eval or test image has a near duplicate in train.</p>"
    body += f"<h3>Within a split ({_fmt(total_within)} images name a near duplicate)</h3>"
    if shown.within:
        body += "".join(
            _pair(
                _thumb(thumbs.get(a[spec.PATH]), a[spec.PATH], _where(a[spec.SPLIT], a[spec.LABEL])),
                _thumb(thumbs.get(b[spec.PATH]), b[spec.PATH], _where(b[spec.SPLIT], b[spec.LABEL])),
                b[spec.NEAR_DUPLICATE_DISTANCE],
            )
            for a, b in shown.within
        )
    else:
        body += "<p>None.</p>"
    span = pairs.get("baseline_span")
    if span is not None:
        body += (
            f"<h3>Across spans: this span's eval or test image beside span {_e(span)}'s train image "
            f"({_fmt(counts.get('across_spans', 0))})</h3>"
        )
        body += (
            "".join(
                _pair(
                    _thumb(thumbs.get(p["path"]), p["path"], _where(p["split"], p["label"])),
                    _thumb(
                        inputs.baseline_thumbnails.get(p["twin"]),
                        p["twin"],
                        _where(f"span {span} train", p["twin_label"]),
                    ),
                    p["distance"],
                )
                for p in shown.across_spans
            )
            or "<p>None.</p>"
        )
    elif pairs.get("note"):
        body += f"<p class='note'>{_e(pairs['note'])}</p>"
    body += _label_conflicts(inputs, shown)
    return _section("near-duplicates", "Near duplicates", body)


def _bins(values: list[float]) -> list[float]:
    """HISTOGRAM_BINS equal bins from the lowest value to the 99th percentile (the tail goes in the last)."""
    ordered = sorted(values)
    low, high = ordered[0], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    if high <= low:
        high = low + 1e-9 if ordered[-1] <= low else ordered[-1]
    step = (high - low) / HISTOGRAM_BINS
    return [low + i * step for i in range(HISTOGRAM_BINS + 1)]


def _buckets(values: list[float], edges: list[float]) -> list[tuple[float, float, float]]:
    counts = [0] * HISTOGRAM_BINS
    step = edges[1] - edges[0]
    for v in values:
        counts[min(HISTOGRAM_BINS - 1, max(0, int((v - edges[0]) / step)))] += 1
    return [(edges[i], edges[i + 1], float(c)) for i, c in enumerate(counts)]


def _properties(inputs: ReportInputs) -> str:
    measured = _measured(inputs.catalog)
    if not measured:
        return _section("properties", "Pixel properties", "<p>No pixel properties were measured.</p>")
    splits = sorted({r[spec.SPLIT] for r in measured}, key=lambda s: (s != "train", s != "eval", s))
    groups = [(f"{s} ({_fmt(sum(1 for r in measured if r[spec.SPLIT] == s))})", s) for s in splits]
    earlier = [r for r in inputs.baseline_pixels if r.get(spec.SPLIT) == "train"]
    span = inputs.checks.get("near_duplicates", {}).get("baseline_span")
    if earlier:
        groups.append((f"span {span} train ({_fmt(len(earlier))})", None))
    drift = {
        r["feature"]: r
        for r in inputs.checks.get("drift", {}).get("features", [])
        if r.get("check") == "property_drift"
    }
    rows = []
    for name in spec.PIXEL_PROPERTIES:
        values = {s: [r[name] for r in measured if r[spec.SPLIT] == s] for s in splits}
        values[None] = [r[name] for r in earlier if r.get(name) is not None]
        edges = _bins([v for vs in values.values() for v in vs])
        cells = [
            _histogram_svg(_buckets(values[key], edges), width=150, height=34) if values[key] else "–"
            for _, key in groups
        ]
        compared = drift.get(name)
        verdict = (
            ""
            if compared is None
            else f"<br>JS {_fmt(compared['value'])} "
            + ('<span class="sev warning">drifted</span>' if compared["drifted"] else "ok")
        )
        rows.append([f"<code>{_e(name)}</code>{verdict}", *cells])
    body = (
        "<p>Each property's distribution per split of this span"
        + (f" and in span {_e(span)}'s train split (property drift: Drift section)" if earlier else "")
        + "; bins are shared across a row.</p>"
    )
    body += _table(["property", *(label for label, _ in groups)], rows, "props")
    classes = inputs.checks.get("property_classes", [])[:MAX_PROPERTY_CLASSES]
    if classes:
        limit = inputs.checks.get("options", {}).get("property_imbalance", 0.95)
        compared_names = [n for n in spec.PIXEL_PROPERTIES if any(n in c["median"] for c in classes)]
        table_rows = []
        for c in classes:
            cells = []
            for n in compared_names:
                share = c["share_above"].get(n)
                apart = share is not None and (share >= limit or share <= 1 - limit)
                cell = _fmt(c["median"].get(n))
                if share is not None:
                    cell += f" <span class='note'>({share:.0%})</span>"
                cells.append(f"<span class='warn'>{cell}</span>" if apart else cell)
            table_rows.append([f"<code>{_e(c['label'])}</code>", _fmt(c["count"]), *cells])
        body += (
            "<h3>By class (train)</h3><p class='note'>Median, and in brackets the share of (this class's "
            "image, another class's image) pairs in which this class's is higher; at 50% the property "
            f"says nothing about the class, at or beyond {limit:.0%} (or {1 - limit:.0%}) the class "
            "stands apart: <code>property_imbalance</code>.</p>"
        )
        body += _table(["class", "images", *compared_names], table_rows, "narrow")
    return _section("properties", "Pixel properties", body)


def _features(inputs: ReportInputs) -> str:
    body = ""
    for split in sorted(inputs.statistics, key=lambda s: (s != "train", s)):
        stats = inputs.statistics[split]
        if not stats.datasets:
            continue
        dataset = stats.datasets[0]
        table = _table(
            ["feature", "type", "present", "missing", "summary", "distribution"],
            _feature_rows(dataset),
            "features",
        )
        opened = " open" if split == "train" else ""
        body += (
            f"<details{opened}><summary>Split <b>{_e(split)}</b>: {_fmt(dataset.num_examples)} examples"
            f"</summary>{table}</details>"
        )
    return _section("features", "Feature statistics (TFDV)", body or "<p>No statistics.</p>")


def _schema(inputs: ReportInputs) -> str:
    return _section("schema", "Schema applied", f"<pre>{_e(inputs.schema_text)}</pre>")


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430}
main{max-width:1180px;margin:0 auto;padding:0 20px 40px}
header.verdict{padding:18px 24px;color:#fff}
header.pass{background:#1f7a44}header.fail{background:#b3261e}
header h1{margin:0 0 4px;font-size:24px}.reason{margin:0 0 10px;font-size:15px}
.facts{display:flex;flex-wrap:wrap;gap:6px 22px;font-size:13px}.facts span{opacity:.8}
nav{padding:8px 24px;background:#f1f3f6;font-size:13px}nav a{margin-right:14px;color:#24518f}
h2{margin:28px 0 10px;border-bottom:2px solid #e1e5eb;padding-bottom:4px;font-size:19px}
h3{margin:18px 0 6px;font-size:15px}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:13px}
table.narrow{width:auto}
th,td{border-bottom:1px solid #e4e7ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f7f9;font-weight:600}
code{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
pre{background:#f6f7f9;padding:12px;overflow:auto;font-size:12px;max-height:480px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #dfe3e8;border-radius:6px;padding:8px 16px;min-width:110px}
.card b{display:block;font-size:22px}.card span{color:#556}
.sev{padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}
.sev.error{background:#b3261e}.sev.warning{background:#a66300}
.warn{color:#a66300;font-weight:600}.note{color:#556;font-size:13px}
.thumbs{display:flex;flex-wrap:wrap;align-items:center;gap:4px;margin:4px 0}
.thumbs .label{width:130px}.thumbs img{border:1px solid #dfe3e8;object-fit:contain;background:#f6f7f9}
.top{white-space:nowrap}.custom{color:#445;font-size:12px;margin-top:4px}
.figs{display:flex;flex-wrap:wrap;gap:8px;margin:4px 0}
figure{margin:0;width:112px;font-size:11px;color:#445}figure img{border:1px solid #dfe3e8;
object-fit:contain;background:#f6f7f9;display:block}figcaption{word-break:break-all}
.pair{display:inline-flex;gap:6px;align-items:flex-start;border:1px solid #dfe3e8;border-radius:6px;
padding:6px;margin:0 8px 8px 0}.pair .dist{font-size:12px;width:96px}
.noimg{display:inline-block;width:64px;height:64px;background:#f1f3f6;font-size:10px;color:#778}
table.props svg{display:block}
details{margin:6px 0}summary{cursor:pointer;padding:4px 0}
svg.bar{vertical-align:middle}
"""


def render_report(inputs: ReportInputs) -> str:
    detection = inputs.boxed_samples is not None
    if detection:  # Boxes, not a class per image: the Objects section takes the Classes section's place.
        from components.validation_report.objects import CSS as objects_css
        from components.validation_report.objects import objects_section

        classes, classes_nav, css = objects_section(inputs), ("objects", "Objects"), _CSS + objects_css
    else:
        classes, classes_nav, css = _classes(inputs), ("classes", "Classes"), _CSS
    nav = "".join(
        f'<a href="#{anchor}">{_e(title)}</a>'
        for anchor, title in (
            ("anomalies", "Anomalies"),
            ("drift", "Drift"),
            ("accounting", "Accounting"),
            classes_nav,
            ("quality", "Quality"),
            ("near-duplicates", "Near duplicates"),
            ("properties", "Properties"),
            ("images", "Images"),
            ("features", "Features"),
            ("schema", "Schema"),
        )
    )
    body = "".join(
        [
            _anomalies(inputs),
            _drift(inputs),
            _accounting(inputs),
            classes,
            _quality(inputs),
            _near_duplicates(inputs),
            _properties(inputs),
            _images(inputs),
            _features(inputs),
            _schema(inputs),
        ]
    )
    title = f"{inputs.pipeline_name} data validation: {inputs.checks['verdict'].upper()}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        # No resource may load from anywhere: the page is complete as it is.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{css}</style></head><body>{_header(inputs)}<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
