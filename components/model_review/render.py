"""Renders the model review: one HTML file with inline CSS and SVG, no script, no fetch.

html = render_review(review)                                       # review: review.json's dict
html = render_review(review, data_report_href="validation_report.html")   # linked to the data report

Imports neither TensorFlow nor TFX: `cvpipe report` re-renders the page from review.json. The page
holds per-class precision, recall and F1, the confusion matrix, the most confident mistakes and the
images where a TFLite variant and the SavedModel disagree (with thumbnails), the tuning trials and
the learning curves.
"""

from __future__ import annotations

from typing import Any

from components.model_review import review as review_lib
from components.validation_report.render import _bar, _e, _table  # The data report's cells.

_COLOURS = ("#4a78b5", "#d9822b", "#1f7a44", "#8a4fb5")


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.{digits}f}"
    return _e(value)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _header(review: dict) -> str:
    splits = {s["split"]: s for s in review.get("splits", [])}
    headline = " · ".join(f"{name} accuracy {_num(s['accuracy'])}" for name, s in splits.items())
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
        ("Training images/s", _num(training.get("images_per_second"))),
        ("Generated", review.get("generated_at")),
    ]
    facts_html = "".join(f"<div><span>{_e(k)}</span> {_e(v)}</div>" for k, v in facts)
    return (
        f'<header class="verdict {state}"><h1 id="verdict">{_e(review.get("pipeline_name"))} model review: '
        f'{_e(verdict)}</h1><p class="reason">{_e(headline or "no held-out images to review")}</p>'
        f'<div class="facts">{facts_html}</div></header>'
    )


def _classes(review: dict) -> str:
    if not review.get("splits"):
        return _section(
            "classes", "Per-class precision, recall and F1", "<p>No held-out split has images.</p>"
        )
    body = ""
    for s in review["splits"]:
        rows = [
            [
                f"<code>{_e(c['label'])}</code>",
                _num(c["precision"]),
                _num(c["recall"]),
                f"{_num(c['f1'])} {_bar(c['f1'], width=90)}",
                _num(c["support"]),
                _num(c["predicted"]),
            ]
            for c in s["classes"]
        ]
        for name in ("macro", "weighted"):
            avg = s[name]
            rows.append(
                [
                    f"<b>{name} average</b>",
                    _num(avg["precision"]),
                    _num(avg["recall"]),
                    _num(avg["f1"]),
                    "",
                    "",
                ]
            )
        body += (
            f"<h3>Split <b>{_e(s['split'])}</b>: {_num(s['examples'])} images, "
            f"accuracy {_num(s['accuracy'])}</h3>"
            + _table(["class", "precision", "recall", "F1", "images", "predicted as"], rows, "narrow")
        )
    return _section("classes", "Per-class precision, recall and F1", body)


def _confusion(review: dict) -> str:
    if not review.get("splits"):
        return _section("confusion", "Confusion matrix", "<p>No held-out split has images.</p>")
    labels = review["labels"]
    body = (
        "<p class='note'>Rows: the true class; columns: the predicted class. Shading: share of the row.</p>"
    )
    for s in review["splits"]:
        head = "".join(f"<th class='pred'><code>{_e(label)}</code></th>" for label in labels)
        rows = ""
        for t, counts in enumerate(s["confusion"]):
            total = sum(counts) or 1
            cells = ""
            for p, n in enumerate(counts):
                alpha = n / total
                colour = "31,122,68" if p == t else "179,38,30"
                style = f' style="background:rgba({colour},{alpha * 0.85:.2f})"' if n else ""
                strong = " dark" if alpha > 0.5 else ""
                where = f"true {_e(labels[t])}, predicted {_e(labels[p])}"
                cells += f'<td class="n{strong}"{style} title="{where}">{n}</td>'
            rows += f"<tr><th><code>{_e(labels[t])}</code></th>{cells}<td class='n'>{sum(counts)}</td></tr>"
        body += (
            f"<h3>Split <b>{_e(s['split'])}</b></h3>"
            '<table class="confusion"><thead><tr><th>true \\ predicted</th>'
            f"{head}<th>images</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    return _section("confusion", "Confusion matrix", body)


def _card(item: dict, caption: str) -> str:
    image = (
        f'<img src="{item["thumbnail"]}" alt="{_e(item["path"])}" width="96" height="96">'
        if item.get("thumbnail")
        else '<div class="noimg">no image</div>'
    )
    return (
        f'<figure class="card">{image}<figcaption>{caption}<br><code>{_e(item["path"])}</code> '
        f'<span class="split">{_e(item["split"])}</span></figcaption></figure>'
    )


def _mistakes(review: dict) -> str:
    mistakes = review.get("mistakes", [])
    title = "Most confident mistakes"
    if not mistakes:
        return _section(
            "mistakes", title, "<p>No mistakes: every held-out image was classified correctly.</p>"
        )
    cards = "".join(
        _card(
            m, f"<b>{_e(m['label'])}</b> called <b class='bad'>{_e(m['predicted'])}</b> at {_num(m['score'])}"
        )
        for m in mistakes
    )
    note = (
        f"<p class='note'>{_num(review.get('mistakes_total'))} held-out images misclassified by the "
        f"SavedModel; the {len(mistakes)} it was surest of.</p>"
    )
    return _section("mistakes", title, note + f'<div class="cards">{cards}</div>')


def _edge(review: dict) -> str:
    title = "TFLite against the SavedModel"
    edge = review.get("edge")
    if edge is None:
        return _section("edge", title, "<p>No TFLite export in this run (edge.enabled: false).</p>")
    if not edge:
        return _section("edge", title, "<p>No TFLite variant to compare.</p>")
    rows = [
        [
            f"<code>{_e(v['mode'])}</code>",
            _num(v["examples"]),
            _num(v["agreement"]),
            _num(v["disagreements_total"]),
            _num(v["accuracy"]),
            _num(v["reference_accuracy"]),
            {True: "blessed", False: '<span class="bad">NOT blessed</span>'}.get(v.get("blessed"), "–")
            + (f" ({_e(v['reason'])})" if v.get("reason") else ""),
        ]
        for v in edge
    ]
    body = _table(
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
            body += f"<p>{_e(v['mode'])}: no disagreement with the SavedModel on the held-out images.</p>"
            continue
        cards = "".join(
            _card(
                d,
                f"true <b>{_e(d['label'])}</b><br>SavedModel <b>{_e(d['reference']['label'])}</b> "
                f"{_num(d['reference']['score'])}<br>{_e(v['mode'])} "
                f"<b class='bad'>{_e(d['variant']['label'])}</b> "
                f"{_num(d['variant']['score'])}",
            )
            for d in v["disagreements"]
        )
        body += (
            f"<h3>{_e(v['mode'])} disagrees with the SavedModel on {_num(v['disagreements_total'])} images"
            f"{' (the largest gaps shown)' if v['disagreements_total'] > len(v['disagreements']) else ''}"
            "</h3>"
            f'<div class="cards">{cards}</div>'
        )
    return _section("edge", title, body)


def _tuning(review: dict) -> str:
    title = "Tuning trials"
    tuning = review.get("tuning")
    if not tuning:
        return _section(
            "tuning", title, "<p>No tuning in this run: the Trainer used model.hyperparameters.</p>"
        )
    trials = review_lib.ranked_trials(tuning.get("trials", []))
    names = sorted({name for t in trials for name in (t.get("hyperparameters") or {})})
    rows = []
    for rank, t in enumerate(trials, 1):
        hp = t.get("hyperparameters") or {}
        best = rank == 1 and t.get("score") is not None
        rows.append(
            [
                f"{rank}{' <b>best</b>' if best else ''}",
                _e(t.get("trial_id")),
                _e(t.get("status")),
                _num(t.get("score")),
            ]
            + [_num(hp.get(name), 4) for name in names]
            + [
                _e(t.get("tuner_id")),
                _num(t.get("images_per_second")),
                _num(t.get("first_epoch_images_per_second")),
            ]
        )
    body = _table(
        [
            "rank",
            "trial",
            "status",
            "score (val accuracy)",
            *names,
            "worker",
            "images/s",
            "first epoch images/s",
        ],
        rows,
    )
    failed = [t for t in trials if t.get("status") in ("FAILED", "INVALID")]
    if failed:
        items = "".join(
            f"<li>trial {_e(t.get('trial_id'))}: <pre>{_e(t.get('reason') or 'no reason given')}</pre></li>"
            for t in failed
        )
        body += (
            f"<h3 class='bad'>{len(failed)} failed trial{'s' if len(failed) > 1 else ''}</h3><ul>{items}</ul>"
        )
    restarts = tuning.get("worker_restarts") or []
    if restarts:
        body += f"<p class='note'>Tuning workers restarted: {_e(restarts)}</p>"
    return _section("tuning", title, body)


def _line_chart(title: str, series: list[tuple[str, list[float]]], epochs: list[int]) -> str:
    """Each series against the epoch (1-based on the axis), y from its minimum to its maximum."""
    width, height, left, bottom, top = 340, 150, 44, 20, 8
    values = [v for _, vs in series for v in vs if v is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    first, last = (epochs[0], epochs[-1]) if epochs else (0, max(len(vs) for _, vs in series) - 1)
    run = (last - first) or 1

    def x(epoch):
        return left + (epoch - first) / run * (width - left - 8)

    def y(value):
        return top + (1 - (value - low) / span) * (height - top - bottom)

    lines = ""
    for (name, vs), colour in zip(series, _COLOURS):
        xs = epochs if len(epochs) == len(vs) else list(range(first, first + len(vs)))
        points = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(xs, vs) if v is not None)
        dots = "".join(
            f'<circle cx="{x(e):.1f}" cy="{y(v):.1f}" r="2.2" fill="{colour}">'
            f"<title>{_e(name)} epoch {e + 1}: {v:.4g}</title></circle>"
            for e, v in zip(xs, vs)
            if v is not None
        )
        lines += f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{points}"/>{dots}'
    legend = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{_e(name)}</span>'
        for (name, _), colour in zip(series, _COLOURS)
    )
    axis = height - bottom
    return (
        f'<figure class="chart"><figcaption><b>{_e(title)}</b> {legend}</figcaption>'
        f'<svg width="{width}" height="{height}" role="img" aria-label="{_e(title)} by epoch">'
        f'<rect x="{left}" y="{top}" width="{width - left - 8}" height="{axis - top}" fill="#f4f6f9"/>'
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end">{high:.3g}</text>'
        f'<text x="{left - 4}" y="{axis}" font-size="9" text-anchor="end">{low:.3g}</text>'
        f'<text x="{left}" y="{height - 6}" font-size="9">epoch {first + 1}</text>'
        f'<text x="{width - 8}" y="{height - 6}" font-size="9" text-anchor="end">{last + 1}</text>'
        f"{lines}</svg></figure>"
    )


def _curves(review: dict) -> str:
    title = "Learning curves"
    history = review.get("history")
    if not history:
        return _section("curves", title, "<p>No history.json in the Trainer's model_run.</p>")
    epochs = [int(e) for e in history.get("epoch", [])]
    charts = "".join(
        _line_chart(name, series, epochs) for name, series in review_lib.learning_curves(history)
    )
    body = f'<div class="charts">{charts}</div>'
    # The Trainer may start after the best tuning trial's epochs; a resumed attempt after more.
    continued = int(((review.get("training") or {}).get("continued_from") or {}).get("epochs", 0))
    if continued:
        body += (
            f"<p class='note'>Epochs 1-{continued} are the best tuning trial's: the Trainer continued "
            "from its weights, so they are not in this history.</p>"
        )
    if epochs and epochs[0] > continued:
        body += (
            f"<p class='note'>Training resumed at epoch {epochs[0] + 1} (BackupAndRestore): the epochs "
            "before it ran in the interrupted attempt and are not in this history.</p>"
        )
    return _section("curves", title, body)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430}
main{max-width:1180px;margin:0 auto;padding:0 20px 40px}
header.verdict{padding:18px 24px;color:#fff}
header.pass{background:#1f7a44}header.fail{background:#b3261e}header.plain{background:#2d4f7c}
header h1{margin:0 0 4px;font-size:24px}.reason{margin:0 0 10px;font-size:15px}
.facts{display:flex;flex-wrap:wrap;gap:6px 22px;font-size:13px}.facts span{opacity:.8}
nav{padding:8px 24px;background:#f1f3f6;font-size:13px}nav a{margin-right:14px;color:#24518f}
nav a.other{font-weight:600}
h2{margin:28px 0 10px;border-bottom:2px solid #e1e5eb;padding-bottom:4px;font-size:19px}
h3{margin:18px 0 6px;font-size:15px;font-weight:normal}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:13px}
table.narrow{width:auto}
th,td{border-bottom:1px solid #e4e7ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f7f9;font-weight:600}
table.confusion{width:auto}table.confusion td.n{text-align:right;min-width:34px}
table.confusion td.dark{color:#fff}th.pred code{writing-mode:vertical-rl}
code{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.note{color:#556;font-size:13px}.bad{color:#b3261e}
.cards{display:flex;flex-wrap:wrap;gap:10px}
figure.card{margin:0;width:150px;border:1px solid #dfe3e8;border-radius:6px;padding:6px;font-size:12px}
figure.card img,.noimg{display:block;margin:0 auto 4px;object-fit:contain;background:#f6f7f9;
width:96px;height:96px}
.split{color:#556}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure.chart{margin:0}
.key{margin-left:10px;font-size:12px}.key i{display:inline-block;width:10px;height:10px;margin-right:3px}
svg.bar{vertical-align:middle}
"""


def render_review(review: dict, *, data_report_href: str = "") -> str:
    """The page of one review; ``data_report_href`` links it to the data-validation report."""
    links = [
        ("classes", "Per-class metrics"),
        ("confusion", "Confusion matrix"),
        ("mistakes", "Mistakes"),
        ("edge", "TFLite"),
        ("tuning", "Tuning"),
        ("curves", "Learning curves"),
    ]
    nav = "".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title in links)
    if data_report_href:
        nav += f'<a class="other" id="data-report" href="{_e(data_report_href)}">Data validation report</a>'
    body = "".join(
        [
            _classes(review),
            _confusion(review),
            _mistakes(review),
            _edge(review),
            _tuning(review),
            _curves(review),
        ]
    )
    title = f"{review.get('pipeline_name', 'cvpipe')} model review"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        # No resource may load from anywhere: the page is complete as it is.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>{_header(review)}<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
