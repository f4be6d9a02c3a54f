"""Renders the model review: one HTML file with inline CSS and SVG, no script, no fetch.

html = render_review(review)                                       # review: review.json's dict
html = render_review(review, data_report_href="validation_report.html")   # linked to the data report

Imports neither TensorFlow nor TFX: `cvpipe report` re-renders the page from review.json. A
classifier's page holds per-class precision, recall and F1, the confusion matrix, the most
confident mistakes and the images where a TFLite variant and the SavedModel disagree (with
thumbnails), the tuning trials and the learning curves; a detector's review (``"task":
"detection"`` in review.json) is drawn by render_detection.py.
"""

from __future__ import annotations

from components.model_review import render_detection
from components.model_review.page import (
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


def _header(review: dict) -> str:
    splits = {s["split"]: s for s in review.get("splits", [])}
    headline = " · ".join(f"{name} accuracy {number(s['accuracy'])}" for name, s in splits.items())
    blessed = review.get("blessed")
    state = {True: "pass", False: "fail"}.get(blessed, "plain")
    verdict = {True: "blessed by the Evaluator", False: "NOT blessed by the Evaluator"}.get(
        blessed, "not evaluated"
    )
    training, model = review.get("training") or {}, review.get("model") or {}
    facts = [
        ("Pipeline", review.get("pipeline_name")),
        ("Model", model.get("uri")),
        ("Classes", len(review.get("labels", []))),
        ("Input", f"{model['image_size']}×{model['image_size']}×{model['channels']}" if model else None),
        ("Training images/s", number(training.get("images_per_second"))),
        ("Generated", review.get("generated_at")),
    ]
    facts_html = "".join(f"<div><span>{escape(k)}</span> {escape(v)}</div>" for k, v in facts)
    return (
        f'<header class="verdict {state}"><h1 id="verdict">{escape(review.get("pipeline_name"))} model '
        f'review: {escape(verdict)}</h1><p class="reason">'
        f"{escape(headline or 'no held-out images to review')}</p>"
        f'<div class="facts">{facts_html}</div></header>'
    )


def _classes(review: dict) -> str:
    if not review.get("splits"):
        return section(
            "classes", "Per-class precision, recall and F1", "<p>No held-out split has images.</p>"
        )
    body = ""
    for s in review["splits"]:
        rows = [
            [
                f"<code>{escape(c['label'])}</code>",
                number(c["precision"]),
                number(c["recall"]),
                f"{number(c['f1'])} {bar(c['f1'], width=90)}",
                number(c["support"]),
                number(c["predicted"]),
            ]
            for c in s["classes"]
        ]
        for name in ("macro", "weighted"):
            avg = s[name]
            rows.append(
                [
                    f"<b>{name} average</b>",
                    number(avg["precision"]),
                    number(avg["recall"]),
                    number(avg["f1"]),
                    "",
                    "",
                ]
            )
        body += (
            f"<h3>Split <b>{escape(s['split'])}</b>: {number(s['examples'])} images, "
            f"accuracy {number(s['accuracy'])}</h3>"
            + table(["class", "precision", "recall", "F1", "images", "predicted as"], rows, "narrow")
        )
    return section("classes", "Per-class precision, recall and F1", body)


def _confusion(review: dict) -> str:
    if not review.get("splits"):
        return section("confusion", "Confusion matrix", "<p>No held-out split has images.</p>")
    labels = review["labels"]
    body = (
        "<p class='note'>Rows: the true class; columns: the predicted class. Shading: share of the row.</p>"
    )
    for s in review["splits"]:
        head = "".join(f"<th class='pred'><code>{escape(label)}</code></th>" for label in labels)
        rows = ""
        for t, counts in enumerate(s["confusion"]):
            total = sum(counts) or 1
            cells = ""
            for p, n in enumerate(counts):
                alpha = n / total
                colour = "31,122,68" if p == t else "179,38,30"
                style = f' style="background:rgba({colour},{alpha * 0.85:.2f})"' if n else ""
                strong = " dark" if alpha > 0.5 else ""
                where = f"true {escape(labels[t])}, predicted {escape(labels[p])}"
                cells += f'<td class="n{strong}"{style} title="{where}">{n}</td>'
            rows += (
                f"<tr><th><code>{escape(labels[t])}</code></th>{cells}<td class='n'>{sum(counts)}</td></tr>"
            )
        body += (
            f"<h3>Split <b>{escape(s['split'])}</b></h3>"
            '<table class="confusion"><thead><tr><th>true \\ predicted</th>'
            f"{head}<th>images</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    return section("confusion", "Confusion matrix", body)


def _card(item: dict, caption: str) -> str:
    image = (
        f'<img src="{item["thumbnail"]}" alt="{escape(item["path"])}" width="96" height="96">'
        if item.get("thumbnail")
        else '<div class="noimg">no image</div>'
    )
    return (
        f'<figure class="card">{image}<figcaption>{caption}<br><code>{escape(item["path"])}</code> '
        f'<span class="split">{escape(item["split"])}</span></figcaption></figure>'
    )


def _mistakes(review: dict) -> str:
    mistakes = review.get("mistakes", [])
    title = "Most confident mistakes"
    if not mistakes:
        return section(
            "mistakes", title, "<p>No mistakes: every held-out image was classified correctly.</p>"
        )
    cards = "".join(
        _card(
            m,
            f"<b>{escape(m['label'])}</b> called <b class='bad'>{escape(m['predicted'])}</b> "
            f"at {number(m['score'])}",
        )
        for m in mistakes
    )
    note = (
        f"<p class='note'>{number(review.get('mistakes_total'))} held-out images misclassified by the "
        f"SavedModel; the {len(mistakes)} it was surest of.</p>"
    )
    return section("mistakes", title, note + f'<div class="cards">{cards}</div>')


def _edge(review: dict) -> str:
    title = EDGE_TITLE
    edge = review.get("edge")
    empty = no_edge_section(edge)
    if empty:
        return empty
    rows = [
        [
            f"<code>{escape(v['mode'])}</code>",
            number(v["examples"]),
            number(v["agreement"]),
            number(v["disagreements_total"]),
            number(v["accuracy"]),
            number(v["reference_accuracy"]),
            {True: "blessed", False: '<span class="bad">NOT blessed</span>'}.get(v.get("blessed"), "–")
            + (f" ({escape(v['reason'])})" if v.get("reason") else ""),
        ]
        for v in edge
    ]
    body = table(
        [
            "variant",
            "images",
            "top-1 agreement",
            "disagree",
            "accuracy",
            "SavedModel accuracy",
            "parity gate",
        ],
        rows,
        "narrow",
    )
    for v in edge:
        if not v["disagreements"]:
            body += f"<p>{escape(v['mode'])}: no disagreement with the SavedModel on the held-out images.</p>"
            continue
        cards = "".join(
            _card(
                d,
                f"true <b>{escape(d['label'])}</b><br>SavedModel <b>{escape(d['reference']['label'])}</b> "
                f"{number(d['reference']['score'])}<br>{escape(v['mode'])} "
                f"<b class='bad'>{escape(d['variant']['label'])}</b> "
                f"{number(d['variant']['score'])}",
            )
            for d in v["disagreements"]
        )
        body += (
            f"<h3>{escape(v['mode'])} disagrees with the SavedModel on "
            f"{number(v['disagreements_total'])} images"
            f"{' (the largest gaps shown)' if v['disagreements_total'] > len(v['disagreements']) else ''}"
            "</h3>"
            f'<div class="cards">{cards}</div>'
        )
    return section("edge", title, body)


def render_review(review: dict, *, data_report_href: str = "") -> str:
    """The page of one review; ``data_report_href`` links it to the data-validation report."""
    if review.get("task") == render_detection.TASK:
        return render_detection.render_detection_review(review, data_report_href=data_report_href)
    links = [
        ("classes", "Per-class metrics"),
        ("confusion", "Confusion matrix"),
        ("mistakes", "Mistakes"),
        ("edge", "TFLite"),
        ("tuning", "Tuning"),
        ("curves", "Learning curves"),
    ]
    body = "".join(
        [
            _classes(review),
            _confusion(review),
            _mistakes(review),
            _edge(review),
            tuning_section(review),
            curves_section(review),
        ]
    )
    title = f"{review.get('pipeline_name', 'cvpipe')} model review"
    return document(title, _header(review), links, body, data_report_href=data_report_href)
