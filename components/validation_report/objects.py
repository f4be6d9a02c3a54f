"""The report's object-detection part: thumbnails with their boxes drawn, and the Objects section.

    samples, by_path = scan_boxed_thumbnails(examples_uri, ["train", "eval"], per_class=8,
                                             max_classes=60, wanted={"a.jpg"})
    html = objects_section(inputs)  # inputs.boxed_samples, inputs.boxed_images, checks["objects"]

Boxes are drawn as inline SVG rectangles over the thumbnail (an ``<img>`` with a data URI), with
the class name on each box, so the page stays one offline file with no script. The section shows
boxes per class and split, boxes per image, COCO size classes (small < 32², medium < 96², large;
in pixels of the stored image) and aspect ratios per split and against the previous span, the
comparisons DataChecks made, the annotation problems found at ingestion with example images, and
sample images of each class with every box drawn.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
from typing import Any, Iterable

from components import fileio, tfrecords
from components.data_checks import boxes as boxes_lib
from components.image_example_gen import spec

BOXED_SIZE = 128  # Thumbnail side, pixels: class names stay readable.
NEGATIVES = "(no objects)"  # The samples row of images without boxes.
MAX_ISSUE_EXAMPLES = 3  # Example images per box issue reason (boxes.box_issues).
# Class colours, repeated past the last; chosen to read on dark and light images.
COLOURS = ("#ff4d4f", "#40c4ff", "#ffd740", "#69f0ae", "#e040fb", "#ff9100", "#b2ff59", "#ffffff")


@dataclasses.dataclass(frozen=True)
class Boxed:
    """A thumbnail and the boxes to draw on it (class, xmin, ymin, xmax, ymax[, score]; normalised)."""

    uri: str
    path: str
    split: str
    width: int  # The thumbnail's size, pixels.
    height: int
    boxes: tuple[tuple, ...]


def boxed_thumbnail(image_bytes: bytes, size: int = BOXED_SIZE) -> tuple[str, int, int]:
    """A JPEG data URI of the image shrunk to fit ``size``, and its width and height."""
    from PIL import Image

    with Image.open(io.BytesIO(image_bytes)) as image:
        image = image.convert("RGB")
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=75)
        width, height = image.size
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), width, height


def _boxed(example: dict[str, list], split: str, size: int) -> Boxed:
    row = boxes_lib.image_row(example, split)
    uri, width, height = boxed_thumbnail(example[spec.IMAGE][0], size)
    drawn = tuple((name, *box) for name, box in zip(row[spec.BOX_CLASSES], row[boxes_lib.BOXES]))
    return Boxed(uri, row[spec.PATH], split, width, height, drawn)


def scan_boxed_thumbnails(
    examples_uri: str,
    splits: Iterable[str],
    *,
    per_class: int,
    max_classes: int,
    wanted: Iterable[str] = (),
    size: int = BOXED_SIZE,
) -> tuple[dict[str, list[Boxed]], dict[str, Boxed]]:
    """Up to ``per_class`` images showing each of up to ``max_classes`` classes (an image counts for
    every class it shows; NEGATIVES for images without boxes), and the ``wanted`` paths, in one read.

    Stops once every class of labels.txt and the negatives are full and every wanted path is found.
    """
    vocabulary = os.path.join(examples_uri, spec.LABELS_FILE)
    expected = None
    if fileio.exists(vocabulary):
        with fileio.open(vocabulary) as f:
            expected = min(max_classes, sum(1 for line in f if line.strip())) + 1  # And the negatives.
    missing = set(wanted)
    found: dict[str, list[Boxed]] = {}
    by_path: dict[str, Boxed] = {}
    if per_class <= 0 and not missing:
        return found, by_path
    for split in splits:
        for file in sorted(fileio.glob(os.path.join(examples_uri, f"Split-{split}", "*"))):
            for example in tfrecords.read_examples(file, compression="GZIP"):
                classes = sorted({t.decode("utf-8", "replace") for t in example.get(spec.OBJECT_TEXT) or []})
                path = (example.get(spec.PATH) or [b""])[0].decode("utf-8", "replace")
                groups = [
                    c
                    for c in (classes or [NEGATIVES])
                    if per_class > 0
                    and len(found.get(c, ())) < per_class
                    and (c in found or len(found) < max_classes + 1)
                ]
                if path in missing or groups:
                    boxed = _boxed(example, split, size)
                    if path in missing:
                        by_path[path] = boxed
                        missing.discard(path)
                    for c in groups:
                        found.setdefault(c, []).append(boxed)
                full = per_class <= 0 or (
                    expected is not None
                    and len(found) >= expected
                    and all(len(s) >= per_class for s in found.values())
                )
                if not missing and full:
                    return _ordered(found), by_path
    return _ordered(found), by_path


def _ordered(found: dict[str, list[Boxed]]) -> dict[str, list[Boxed]]:
    return dict(sorted(found.items(), key=lambda item: (item[0] == NEGATIVES, item[0])))


def colour_of(name: str, classes: list[str]) -> str:
    index = classes.index(name) if name in classes else len(classes)
    return COLOURS[index % len(COLOURS)]


def boxed_figure(
    boxed: Boxed | None,
    caption: str,
    classes: list[str],
    title: str = "",
    path: str = "",
    *,
    dashed: tuple[tuple, ...] = (),
) -> str:
    """A figure: the thumbnail with an SVG layer of its boxes (a rect and the class name each).

    ``dashed``: a second set of boxes drawn dashed over the first, e.g. a model's predictions over
    the true boxes. Any box may carry a score after its corners, ``(class, xmin, ymin, xmax, ymax,
    score)``, written beside its class name.
    """
    from components.validation_report.render import _clip, _e

    if boxed is None:
        return (
            f'<figure class="boxed" title="{_e(title or path)}"><span class="noimg">no thumbnail</span>'
            f"<figcaption><code>{_e(_clip(path, 28))}</code><br>{_e(caption)}</figcaption></figure>"
        )
    w, h = boxed.width, boxed.height
    shapes = _box_shapes(boxed.boxes, w, h, classes) + _box_shapes(dashed, w, h, classes, dashed=True)
    layer = (
        f'<svg class="boxes" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="{len(boxed.boxes) + len(dashed)} boxes">{shapes}</svg>'
    )
    return (
        f'<figure class="boxed" title="{_e(title or boxed.path)}" style="width:{max(w, 112)}px">'
        f'<span class="frame" style="width:{w}px;height:{h}px">'
        f'<img src="{boxed.uri}" alt="{_e(boxed.path)}" width="{w}" height="{h}">{layer}</span>'
        f"<figcaption><code>{_e(_clip(boxed.path, 28))}</code><br>{_e(caption)}</figcaption></figure>"
    )


def _box_shapes(boxes, w: int, h: int, classes: list[str], *, dashed: bool = False) -> str:
    from components.validation_report.render import _e

    shapes = []
    for name, xmin, ymin, xmax, ymax, *score in boxes:
        x, y = xmin * w, ymin * h
        bw, bh = max(1.0, (xmax - xmin) * w), max(1.0, (ymax - ymin) * h)
        colour = colour_of(name, classes)
        text = f"{name} {score[0]:.2f}" if score else name
        style = ' stroke-dasharray="4 2"' if dashed else ""
        # A dashed box's name goes inside its bottom edge, clear of a solid box's name above its top.
        label_y = min(h - 1.0, y + bh - 2) if dashed else max(8.0, y - 1)
        shapes.append(
            f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
            f'stroke="{colour}"{style}><title>{_e(text)}</title></rect>'
            f'<text x="{x + 1:.1f}" y="{label_y:.1f}" fill="{colour}">{_e(text)}</text>'
        )
    return "".join(shapes)


def _bars_svg(labels: list[str], counts: list[float], width: int = 180, height: int = 40) -> str:
    """Bars of labelled bins (counts), the first and last bin's names under them."""
    from components.validation_report.render import _e, _fmt

    if not counts:
        return ""
    top = max(counts) or 1.0
    step = width / len(counts)
    bars = "".join(
        f'<rect x="{i * step + 0.5:.1f}" y="{height - c / top * height:.1f}" width="{max(step - 1, 1):.1f}" '
        f'height="{c / top * height:.1f}" fill="#4a78b5"><title>{_e(label)}: {_fmt(c)}</title></rect>'
        for i, (label, c) in enumerate(zip(labels, counts))
    )
    return (
        f'<svg class="hist" width="{width}" height="{height + 12}" role="img" aria-label="histogram">'
        f'<rect width="{width}" height="{height}" fill="#f4f6f9"/>{bars}'
        f'<text x="0" y="{height + 10}" font-size="9">{_e(labels[0])}</text>'
        f'<text x="{width}" y="{height + 10}" font-size="9" text-anchor="end">{_e(labels[-1])}</text></svg>'
    )


def _shares_svg(sizes: dict[str, int], width: int = 160) -> str:
    """One stacked bar of the small / medium / large shares."""
    from components.validation_report.render import _e

    total = sum(sizes.values()) or 1
    x, parts = 0.0, []
    for name, colour in zip(boxes_lib.SIZES, ("#9ec5f0", "#4a78b5", "#1d3f6e")):
        w = sizes.get(name, 0) / total * width
        parts.append(
            f'<rect x="{x:.1f}" width="{w:.1f}" height="12" fill="{colour}">'
            f"<title>{_e(name)}: {sizes.get(name, 0)} ({sizes.get(name, 0) / total:.0%})</title></rect>"
        )
        x += w
    return (
        f'<svg class="bar" width="{width}" height="12" role="img" aria-label="size shares">'
        f"{''.join(parts)}</svg>"
    )


def _split_order(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda s: (s != "train", s != "eval", s))


def objects_section(inputs) -> str:
    """The Objects section of a detection report (render.ReportInputs with the boxed thumbnails)."""
    from components.validation_report.render import _bar, _e, _fmt, _section, _table

    checks = inputs.checks
    objects = checks.get("objects") or {}
    shape = objects.get("splits", {})
    options = checks.get("options", {})
    summary = checks.get("summary", {}).get("objects", {})
    classes = list(
        checks.get("summary", {}).get("labels") or sorted({c for d in shape.values() for c in d["by_class"]})
    )
    splits = _split_order(shape)
    baseline = (objects.get("baseline") or {}).get(options.get("drift_split", "train"))
    span = objects.get("baseline_span")
    min_boxes = options.get("min_box_count", 10)

    cards = "".join(
        f'<div class="card"><b>{_fmt(n)}</b><span>{_e(name)}</span></div>'
        for name, n in (
            ("boxes", sum(d["boxes"] for d in shape.values())),
            ("images with boxes", sum(d["images"] - d["negatives"] for d in shape.values())),
            ("negatives (no boxes)", sum(d["negatives"] for d in shape.values())),
            ("images with box issues", summary.get("images_with_box_issues", 0)),
        )
    )
    body = (
        "<p>Boxes as the examples hold them (after ingestion dropped or clipped bad ones: Box issues "
        f"below). Sizes are COCO's, in pixels of the stored image: small &lt; 32², medium &lt; 96², "
        f"large above.</p><div class='cards'>{cards}</div>"
    )

    # Boxes per class and split.
    most = max((sum(d["by_class"].get(c, 0) for d in shape.values()) for c in classes), default=1) or 1
    rows = []
    for name in classes:
        total = sum(d["by_class"].get(name, 0) for d in shape.values())
        train = shape.get("train", {}).get("by_class", {}).get(name, 0)
        cells = [
            f"{_fmt(d['by_class'].get(name, 0))} "
            f"<span class='note'>({_fmt(d['images_by_class'].get(name, 0))})</span>"
            for d in (shape[s] for s in splits)
        ]
        label = f"<code>{_e(name)}</code>" + (" <span class='warn'>rare</span>" if train < min_boxes else "")
        swatch = f'<span class="swatch" style="background:{colour_of(name, classes)}"></span>'
        rows.append([swatch + label, *cells, f"{_fmt(total)} {_bar(total / most)}"])
    rows.append(
        ["<b>all</b>"]
        + [
            f"<b>{_fmt(shape[s]['boxes'])}</b> <span class='note'>({_fmt(shape[s]['images'])} images)</span>"
            for s in splits
        ]
        + [f"<b>{_fmt(sum(d['boxes'] for d in shape.values()))}</b>"]
    )
    body += (
        "<h3 id='boxes-per-class'>Boxes per class</h3><p class='note'>Boxes, and in brackets the images "
        f"showing the class; <span class='warn'>rare</span>: fewer than {_fmt(min_boxes)} train boxes "
        "(<code>min_box_count</code>).</p>"
    )
    body += _table(["class", *splits, "total"], rows, "narrow")

    # Distributions per split and against the previous span.
    groups = [
        (f"{s} ({_fmt(shape[s]['images'])} images, {_fmt(shape[s]['boxes'])} boxes)", shape[s])
        for s in splits
    ]
    if baseline:
        groups.append(
            (
                f"span {span} train ({_fmt(baseline['images'])} images, {_fmt(baseline['boxes'])} boxes)",
                baseline,
            )
        )
    bins = objects.get("bins", {})
    size_rows = []
    for label, d in groups:
        total = sum(d["sizes"].values()) or 1
        size_rows.append(
            [_e(label)]
            + [f"{_fmt(d['sizes'].get(n, 0))} ({d['sizes'].get(n, 0) / total:.0%})" for n in boxes_lib.SIZES]
            + [_shares_svg(d["sizes"])]
        )
    body += "<h3 id='box-sizes'>Box sizes (COCO)</h3>" + _table(
        ["", "small", "medium", "large", "shares"], size_rows, "narrow"
    )
    hist_rows = []
    for label, d in groups:
        hist_rows.append(
            [
                _e(label),
                _bars_svg(bins.get("per_image", list(boxes_lib.COUNT_LABELS)), d["per_image"]),
                _bars_svg(bins.get("aspect", list(boxes_lib.ASPECT_LABELS)), d["aspect"]),
                _fmt(d["max_per_image"]),
            ]
        )
    body += (
        "<h3 id='box-histograms'>Boxes per image and aspect ratios</h3><p class='note'>Boxes per image "
        "(0, 1, ... 5, 6-10, 11-20, 21-50, 51-100, over 100) and box width / height on a log scale "
        "(1/8 to 8); bins are fixed, so spans compare bin for bin.</p>"
    )
    body += _table(["", "boxes per image", "aspect ratio (w/h)", "most on one image"], hist_rows, "props")

    compared = [(r, r.get("split", "")) for r in objects.get("skew", [])] + [
        (r, f"train against span {span}") for r in objects.get("drift", [])
    ]
    if compared:
        body += "<h3 id='box-comparisons'>Compared</h3>" + _table(
            ["distribution", "split", "comparator", "distance", "threshold", "result"],
            (
                [
                    f"<code>{_e(r['feature'])}</code>",
                    _e(where),
                    _e(r["comparator"]),
                    _fmt(r["value"]),
                    _fmt(r["threshold"]),
                    f'<span class="sev warning">{_e(r["check"])}</span>' if r["drifted"] else "ok",
                ]
                for r, where in compared
            ),
            "narrow",
        )
    if objects.get("note"):
        body += f"<p class='note'>{_e(objects['note'])}</p>"
    crowded = [(s, path, n) for s in splits for path, n in shape[s]["crowded"]]
    if crowded:
        body += (
            f"<h3>Images with more than {_fmt(options.get('max_boxes_per_image', 100))} boxes</h3>"
            + "<div class='figs'>"
            + "".join(
                boxed_figure(inputs.boxed_images.get(path), f"{s} · {n} boxes", classes, path=path)
                for s, path, n in crowded[:8]
            )
            + "</div>"
        )

    # What ingestion dropped or repaired.
    issues = objects.get("issues", {})
    counts = issues.get("counts", {})
    body += "<h3 id='box-issues'>Box issues</h3>"
    if counts:
        body += (
            "<p class='note'>Found in the annotations at ingestion (catalog column "
            "<code>box_issues</code>): the box was dropped, or clipped (<code>box_clipped</code>) or "
            "noted (<code>size_mismatch</code>) and kept; the image keeps its other boxes. The boxes "
            "drawn are those kept.</p>"
        )
        body += _table(
            ["reason", "boxes"], ([f"<code>{_e(k)}</code>", _fmt(v)] for k, v in counts.items()), "narrow"
        )
        for reason, shown in issues.get("examples", {}).items():
            figures = "".join(
                boxed_figure(
                    inputs.boxed_images.get(e["path"]),
                    f"{e['split']} · {e['detail']}",
                    classes,
                    title=f"{reason}: {e['detail']}",
                    path=e["path"],
                )
                for e in shown
            )
            body += f"<h4><code>{_e(reason)}</code></h4><div class='figs'>{figures}</div>"
    else:
        body += "<p>None: every annotated box was inside its image, of the vocabulary and unique.</p>"

    # Samples, boxes drawn.
    if inputs.boxed_samples:
        body += "<h3 id='box-samples'>Samples per class, boxes drawn</h3>"
        for name, samples in inputs.boxed_samples.items():
            figures = "".join(
                boxed_figure(b, f"{b.split} · {len(b.boxes)} box{'es' if len(b.boxes) != 1 else ''}", classes)
                for b in samples
            )
            body += (
                f'<div class="boxrow"><div class="label"><code>{_e(name)}</code></div>'
                f'<div class="figs">{figures}</div></div>'
            )
    return _section("objects", "Objects (detection)", body)


def wanted_paths(checks: dict[str, Any]) -> set[str]:
    """The images the Objects section shows besides the samples: box issue examples, crowded images."""
    objects = checks.get("objects") or {}
    found = {e["path"] for shown in objects.get("issues", {}).get("examples", {}).values() for e in shown}
    found |= {path for d in objects.get("splits", {}).values() for path, _ in d["crowded"][:8]}
    return found


CSS = """
figure.boxed{width:auto}.frame{position:relative;display:block}
.frame img{display:block;border:1px solid #dfe3e8}
svg.boxes{position:absolute;left:1px;top:1px;pointer-events:none}
svg.boxes rect.box{fill:none;stroke-width:1.5}
svg.boxes text{font:bold 9px system-ui,sans-serif;paint-order:stroke;stroke:#000;stroke-width:2px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border:1px solid #889}
.boxrow{display:flex;gap:8px;align-items:flex-start;margin:6px 0}.boxrow .label{width:110px}
h4{margin:10px 0 4px;font-size:14px}
"""
