"""What every model review page shares: the page shell, numbers, sections, the tuning trials and the
learning curves, whatever the task.

html = document("pets model review", header_html, [("tuning", "Tuning")], tuning_section(review))

Imports neither TensorFlow nor TFX (`cvpipe report` re-renders a review without them). The cells
(escaping, tables, bars) are the data report's, so the two pages read alike.
"""

from __future__ import annotations

from typing import Any

from components.model_review import review as review_lib

# The data report's cells, under the public names the review pages use.
from components.validation_report.render import _bar as bar
from components.validation_report.render import _e as escape
from components.validation_report.render import _table as table

__all__ = [
    "COLOURS",
    "CSS",
    "bar",
    "curves_section",
    "document",
    "escape",
    "line_chart",
    "number",
    "section",
    "table",
    "tuning_section",
]

COLOURS = ("#4a78b5", "#d9822b", "#1f7a44", "#8a4fb5")


def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.{digits}f}"
    return escape(value)


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


EDGE_TITLE = "TFLite against the SavedModel"


def no_edge_section(edge: list | None) -> str | None:
    """The edge section when there is nothing to compare (no export, or no variant); else None."""
    if edge is None:
        return section("edge", EDGE_TITLE, "<p>No TFLite export in this run (edge.enabled: false).</p>")
    if not edge:
        return section("edge", EDGE_TITLE, "<p>No TFLite variant to compare.</p>")
    return None


def tuning_section(review: dict) -> str:
    title = "Tuning trials"
    tuning = review.get("tuning")
    if not tuning:
        return section(
            "tuning", title, "<p>No tuning in this run: the Trainer used model.hyperparameters.</p>"
        )
    # The Tuner's objective (recorded by the review since it was added; before, always val accuracy).
    objective = tuning.get("objective") or {"name": "val accuracy", "direction": "max"}
    trials = review_lib.ranked_trials(
        tuning.get("trials", []), lower_is_better=objective["direction"] == "min"
    )
    names = sorted({name for t in trials for name in (t.get("hyperparameters") or {})})
    rows = []
    for rank, t in enumerate(trials, 1):
        hp = t.get("hyperparameters") or {}
        best = rank == 1 and t.get("score") is not None
        rows.append(
            [
                f"{rank}{' <b>best</b>' if best else ''}",
                escape(t.get("trial_id")),
                escape(t.get("status")),
                number(t.get("score")),
            ]
            + [number(hp.get(name), 4) for name in names]
            + [
                escape(t.get("tuner_id")),
                number(t.get("images_per_second")),
                number(t.get("first_epoch_images_per_second")),
            ]
        )
    body = table(
        [
            "rank",
            "trial",
            "status",
            f"score ({objective['name']})",
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
            f"<li>trial {escape(t.get('trial_id'))}: "
            f"<pre>{escape(t.get('reason') or 'no reason given')}</pre></li>"
            for t in failed
        )
        body += (
            f"<h3 class='bad'>{len(failed)} failed trial{'s' if len(failed) > 1 else ''}</h3><ul>{items}</ul>"
        )
    restarts = tuning.get("worker_restarts") or []
    if restarts:
        body += f"<p class='note'>Tuning workers restarted: {escape(restarts)}</p>"
    return section("tuning", title, body)


def line_chart(title: str, series: list[tuple[str, list[float]]], epochs: list[int]) -> str:
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
    for (name, vs), colour in zip(series, COLOURS):
        xs = epochs if len(epochs) == len(vs) else list(range(first, first + len(vs)))
        points = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(xs, vs) if v is not None)
        dots = "".join(
            f'<circle cx="{x(e):.1f}" cy="{y(v):.1f}" r="2.2" fill="{colour}">'
            f"<title>{escape(name)} epoch {e + 1}: {v:.4g}</title></circle>"
            for e, v in zip(xs, vs)
            if v is not None
        )
        lines += f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{points}"/>{dots}'
    legend = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{escape(name)}</span>'
        for (name, _), colour in zip(series, COLOURS)
    )
    axis = height - bottom
    return (
        f'<figure class="chart"><figcaption><b>{escape(title)}</b> {legend}</figcaption>'
        f'<svg width="{width}" height="{height}" role="img" aria-label="{escape(title)} by epoch">'
        f'<rect x="{left}" y="{top}" width="{width - left - 8}" height="{axis - top}" fill="#f4f6f9"/>'
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end">{high:.3g}</text>'
        f'<text x="{left - 4}" y="{axis}" font-size="9" text-anchor="end">{low:.3g}</text>'
        f'<text x="{left}" y="{height - 6}" font-size="9">epoch {first + 1}</text>'
        f'<text x="{width - 8}" y="{height - 6}" font-size="9" text-anchor="end">{last + 1}</text>'
        f"{lines}</svg></figure>"
    )


def curves_section(review: dict) -> str:
    title = "Learning curves"
    history = review.get("history")
    if not history:
        return section("curves", title, "<p>No history.json in the Trainer's model_run.</p>")
    epochs = [int(e) for e in history.get("epoch", [])]
    charts = "".join(line_chart(name, series, epochs) for name, series in review_lib.learning_curves(history))
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
    return section("curves", title, body)


CSS = """
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


def document(
    title: str,
    header: str,
    links: list[tuple[str, str]],
    body: str,
    *,
    data_report_href: str = "",
    css: str = "",
) -> str:
    """The page: ``header``, a navigation bar of (anchor, title) ``links`` (and the data report's, when
    ``data_report_href`` is set), then ``body``; one file that may load nothing."""
    nav = "".join(f'<a href="#{anchor}">{escape(name)}</a>' for anchor, name in links)
    if data_report_href:
        nav += (
            f'<a class="other" id="data-report" href="{escape(data_report_href)}">Data validation report</a>'
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        # No resource may load from anywhere: the page is complete as it is.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{CSS}{css}</style></head><body>{header}<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
