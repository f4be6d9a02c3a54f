"""Renders the data-validation report: one HTML file with inline CSS and SVG, no script, no fetch.

html = render_report(ReportInputs(checks=..., catalog=rows, statistics={"train": stats}, ...))

Everything a reviewer needs to decide whether the data is fit to train on is in the file: the
verdict and the gate's reason, the accounting of every input file, counts and sample thumbnails per
class, feature statistics with histograms, every anomaly, the drift against the previous span and
the schema. Long tables are capped (the catalog has every row) so the file stays small.
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
    vocabulary = os.path.join(examples_uri, spec.LABELS_FILE)
    expected = None
    if fileio.exists(vocabulary):
        with fileio.open(vocabulary) as f:
            expected = min(max_classes, sum(1 for line in f if line.strip()))

    found: dict[str, list[tuple[str, str]]] = collections.OrderedDict()
    for split in splits:
        for file in sorted(fileio.glob(os.path.join(examples_uri, f"Split-{split}", "*"))):
            for example in tfrecords.read_examples(file, compression="GZIP"):
                image, label, path = (
                    _one_string(example, key, file) for key in (spec.IMAGE, spec.LABEL, spec.PATH)
                )
                label = label.decode("utf-8", "replace")
                if label not in found and len(found) >= max_classes:
                    continue
                samples = found.setdefault(label, [])
                if len(samples) < per_class:
                    samples.append((thumbnail_uri(image, size), path.decode("utf-8", "replace")))
                if _full(found, expected, per_class):
                    return dict(sorted(found.items()))
    return dict(sorted(found.items()))


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
    body = (
        f"<p>Split <code>{_e(inputs.checks.get('options', {}).get('drift_split', 'train'))}</code> of span "
        f"{_e(inputs.checks.get('span'))} against span {_e(drift.get('baseline_span'))} "
        f"(<code>{_e(drift.get('baseline_statistics'))}</code>).</p>"
    )
    body += _table(
        ["feature", "comparator", "distance", "threshold", "result"],
        (
            [
                f"<code>{_e(r['feature'])}</code>",
                _e(r["comparator"]),
                _fmt(r["value"]),
                _fmt(r["threshold"]),
                '<span class="sev error">drifted</span>' if r["drifted"] else "ok",
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
details{margin:6px 0}summary{cursor:pointer;padding:4px 0}
svg.bar{vertical-align:middle}
"""


def render_report(inputs: ReportInputs) -> str:
    nav = "".join(
        f'<a href="#{anchor}">{_e(title)}</a>'
        for anchor, title in (
            ("anomalies", "Anomalies"),
            ("drift", "Drift"),
            ("accounting", "Accounting"),
            ("classes", "Classes"),
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
            _classes(inputs),
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
        f"<style>{_CSS}</style></head><body>{_header(inputs)}<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
