"""Renders a detector's model review (review.json with ``"task": "detection"``): the same kind of page
as a classifier's, with COCO's numbers and the boxes drawn.

html = render_detection_review(review, data_report_href="validation_report.html")

The page holds per split and class AP@0.5 and AP@[.5:.95] with the mAP, the precision-recall curve
of every class at IoU 0.5 (inline SVG), recall by COCO object size, the held-out images with the
most missed, false and wrong-class boxes (true boxes solid, the SavedModel's dashed with their
scores), each TFLite variant's mAP beside the SavedModel's with the exporter's verdict and the
images where their boxes differ, and the tuning trials and learning curves every review shares.
Imports neither TensorFlow nor TFX.
"""

from __future__ import annotations

from components.model_review import spec
from components.model_review.page import (
    COLOURS,
    EDGE_TITLE,
    bar,
    curves_section,
    document,
    escape,
    no_edge_section,
    number,
    section,
    table,
    tuning_section,
)
from components.validation_report.objects import CSS as BOXES_CSS
from components.validation_report.objects import Boxed, boxed_figure

TASK = spec.DETECTION_TASK
_NO_SPLIT = "<p>No held-out split has images.</p>"


def _header(review: dict) -> str:
    headline = " · ".join(
        f"{s['split']} mAP@0.5 {number(s['map50'])}"
        for s in review.get("splits", [])
        if s["map50"] is not None
    )
    blessed = review.get("blessed")
    state = {True: "pass", False: "fail"}.get(blessed, "plain")
    verdict = {True: "blessed by the Evaluator", False: "NOT blessed by the Evaluator"}.get(
        blessed, "not evaluated"
    )
    training, model = review.get("training") or {}, review.get("model") or {}
    facts = [
        ("Pipeline", review.get("pipeline_name")),
        ("Model", model.get("uri")),
        ("Task", "object detection"),
        ("Classes", len(review.get("labels", []))),
        ("Input", f"{model['image_size']}×{model['image_size']}×{model['channels']}" if model else None),
        ("Training images/s", number(training.get("images_per_second"))),
        ("Generated", review.get("generated_at")),
    ]
    facts_html = "".join(f"<div><span>{escape(k)}</span> {escape(v)}</div>" for k, v in facts)
    return (
        f'<header class="verdict {state}"><h1 id="verdict">{escape(review.get("pipeline_name"))} model '
        f'review: {escape(verdict)}</h1><p class="reason">{escape(headline or "no held-out boxes to score")}'
        f'</p><div class="facts">{facts_html}</div></header>'
    )


def _split_title(s: dict) -> str:
    return (
        f"<h3>Split <b>{escape(s['split'])}</b>: {number(s['images'])} images, {number(s['boxes'])} true "
        f"boxes, mAP@0.5 {number(s['map50'])}, mAP@[.5:.95] {number(s['map'])}</h3>"
    )


def _ap(review: dict) -> str:
    title = "Per-class AP (COCO)"
    if not review.get("splits"):
        return section("ap", title, _NO_SPLIT)
    body = (
        "<p class='note'>pycocotools' COCOeval on the SavedModel's detections: AP is the mean precision "
        "over 101 recall points, at IoU 0.5 and averaged over IoU 0.5, 0.55 ... 0.95; the mAP is the "
        "mean over the classes with true boxes.</p>"
    )
    for s in review["splits"]:
        body += _split_title(s)
        if not s["classes"]:
            body += "<p>No true boxes in this split: nothing to score.</p>"
            continue
        rows = [
            [
                f"<code>{escape(c['label'])}</code>",
                number(c["boxes"]),
                f"{number(c['ap50'])} {bar(c['ap50'] or 0.0, width=90)}",
                number(c["ap"]),
            ]
            for c in s["classes"]
        ]
        rows.append(
            ["<b>mAP</b>", number(s["boxes"]), f"<b>{number(s['map50'])}</b>", f"<b>{number(s['map'])}</b>"]
        )
        body += table(["class", "true boxes", "AP@0.5", "AP@[.5:.95]"], rows, "narrow")
    return section("ap", title, body)


def _pr_chart(label: str, curves: list[tuple[str, list]]) -> str:
    """Precision (0-1) against recall (0-1) of one class, a line per split."""
    width, height, left, bottom, top, right = 230, 170, 30, 22, 8, 8
    inner_w, inner_h = width - left - right, height - top - bottom

    def x(recall):
        return left + recall * inner_w

    def y(precision):
        return top + (1 - precision) * inner_h

    lines = ""
    for (split, values), colour in zip(curves, COLOURS):
        points = " ".join(f"{x(i / 100):.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None)
        if points:
            lines += (
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{points}">'
                f"<title>{escape(label)}, {escape(split)}</title></polyline>"
            )
    legend = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{escape(split)}</span>'
        for (split, _), colour in zip(curves, COLOURS)
    )
    axis = top + inner_h
    return (
        f'<figure class="chart"><figcaption><code>{escape(label)}</code> {legend}</figcaption>'
        f'<svg width="{width}" height="{height}" role="img" aria-label="precision against recall, '
        f'{escape(label)}"><rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="#f4f6f9"/>'
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end">1</text>'
        f'<text x="{left - 4}" y="{axis}" font-size="9" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 8}" font-size="9">recall 0</text>'
        f'<text x="{width - right}" y="{height - 8}" font-size="9" text-anchor="end">1</text>'
        f'<text x="{left + 4}" y="{top + 18}" font-size="9" fill="#556">precision</text>'
        f"{lines}</svg></figure>"
    )


def _pr_curves(review: dict) -> str:
    title = "Precision-recall curves at IoU 0.5"
    scored = [s for s in review.get("splits", []) if s["classes"]]
    if not scored:
        return section("pr", title, "<p>No held-out split has true boxes.</p>")
    charts = "".join(
        _pr_chart(label, [(s["split"], s["classes"][k]["precision_at_recall"]) for s in scored])
        for k, label in enumerate(review["labels"])
    )
    note = (
        "<p class='note'>COCOeval's interpolated precision at each recall (0, 0.01 ... 1), 0 past the "
        "highest recall the detections reach. A class without true boxes in a split has no curve there.</p>"
    )
    return section("pr", title, note + f'<div class="charts">{charts}</div>')


def _sizes(review: dict) -> str:
    title = "Recall by object size"
    scored = [s for s in review.get("splits", []) if s["sizes"]]
    if not scored:
        return section("sizes", title, "<p>No held-out split has true boxes.</p>")
    body = (
        "<p class='note'>COCO's sizes, in pixels of the stored image: small &lt; 32², medium &lt; 96², "
        "large above; recall of the SavedModel's detections (up to 100 per image), averaged over the "
        "classes with boxes of that size; – where there is none.</p>"
    )
    for s in scored:
        rows = [
            [escape(z["size"]), number(z["boxes"]), number(z["recall50"]), number(z["recall"])]
            for z in s["sizes"]
        ]
        body += f"<h3>Split <b>{escape(s['split'])}</b></h3>" + table(
            ["size", "true boxes", "recall@0.5", "recall@[.5:.95]"], rows, "narrow"
        )
    return section("sizes", title, body)


def _figure(item: dict, solid: list, dashed: list, caption: str, labels: list[str]) -> str:
    boxed = None
    if item.get("thumbnail"):
        boxes = tuple(tuple(b) for b in solid)
        boxed = Boxed(item["thumbnail"], item["path"], item["split"], item["width"], item["height"], boxes)
    return boxed_figure(
        boxed,
        f"{item['split']} · {caption}",
        labels,
        path=item["path"],
        dashed=tuple(tuple(b) for b in dashed),
    )


def _worst(review: dict) -> str:
    title = "Images with the most mistakes"
    match = review.get("match") or {}
    worst = review.get("worst", [])
    if not worst:
        return section("worst", title, "<p>No mistakes: every held-out box was found, and nothing else.</p>")
    figures = "".join(
        _figure(
            w,
            w["truth"],
            w["predicted"],
            f"{w['missed']} missed · {w['false']} false · {w['wrong_class']} wrong class",
            review["labels"],
        )
        for w in worst
    )
    note = (
        f"<p class='note'>{number(review.get('worst_total'))} held-out images have a missed, false or "
        f"wrong-class box; the {len(worst)} with the most. Solid: the true boxes; dashed: the "
        f"SavedModel's detections scoring {number(match.get('min_score'), 2)} or more, matched to the "
        f"true boxes at IoU {number(match.get('iou'), 2)} or more, the surest first (a wrong-class box "
        "covers a true box of another class).</p>"
    )
    return section("worst", title, note + f'<div class="figs">{figures}</div>')


def _edge(review: dict) -> str:
    title = EDGE_TITLE
    edge = review.get("edge")
    empty = no_edge_section(edge)
    if empty:
        return empty
    rows = [
        [
            f"<code>{escape(v['mode'])}</code>",
            number(v["images"]),
            number(v["map50"]),
            number(v["reference_map50"]),
            number(v["disagreements_total"]),
            f"{number(v['parity']['map50'])} / {number(v['parity']['reference_map50'])}",
            {True: "blessed", False: '<span class="bad">NOT blessed</span>'}.get(v.get("blessed"), "–")
            + (f" ({escape(v['reason'])})" if v.get("reason") else ""),
        ]
        for v in edge
    ]
    headers = [
        "variant",
        "held-out images",
        "mAP@0.5 (held-out)",
        "SavedModel mAP@0.5 (held-out)",
        "images whose boxes differ",
        "exporter: mAP@0.5 / SavedModel's (eval)",
        "parity gate",
    ]
    body = table(headers, rows, "narrow")
    body += (
        "<p class='note'>Solid: the SavedModel's boxes; dashed: the variant's (both scoring "
        f"{number((review.get('match') or {}).get('min_score'), 2)} or more). A box differs when the "
        "other model has none of its class over it at IoU 0.5.</p>"
    )
    for v in edge:
        if not v["disagreements"]:
            body += f"<p>{escape(v['mode'])}: the same boxes as the SavedModel on every held-out image.</p>"
            continue
        figures = "".join(
            _figure(
                d,
                d["reference"],
                d["variant"],
                f"{d['reference_only']} SavedModel only · {d['variant_only']} {v['mode']} only · "
                f"{d['other_class']} other class",
                review["labels"],
            )
            for d in v["disagreements"]
        )
        shown = " (the most differences shown)" if v["disagreements_total"] > len(v["disagreements"]) else ""
        body += (
            f"<h3>{escape(v['mode'])} and the SavedModel differ on {number(v['disagreements_total'])} "
            f"images{shown}</h3><div class='figs'>{figures}</div>"
        )
    return section("edge", title, body)


_CSS = (
    BOXES_CSS
    + """
.figs{display:flex;flex-wrap:wrap;gap:10px;margin:4px 0}
figure.boxed{margin:0;font-size:11px;color:#445}figure.boxed figcaption{word-break:normal}
"""
)


def render_detection_review(review: dict, *, data_report_href: str = "") -> str:
    """The page of one detector's review; ``data_report_href`` links it to the data-validation report."""
    links = [
        ("ap", "Per-class AP"),
        ("pr", "Precision-recall"),
        ("sizes", "Object sizes"),
        ("worst", "Mistakes"),
        ("edge", "TFLite"),
        ("tuning", "Tuning"),
        ("curves", "Learning curves"),
    ]
    body = "".join(
        [
            _ap(review),
            _pr_curves(review),
            _sizes(review),
            _worst(review),
            _edge(review),
            tuning_section(review),
            curves_section(review),
        ]
    )
    title = f"{review.get('pipeline_name', 'cvpipe')} model review"
    return document(title, _header(review), links, body, data_report_href=data_report_href, css=_CSS)
