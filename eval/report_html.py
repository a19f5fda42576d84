"""`report.html`: the Markdown report's content plus two inline-SVG plots.

The plots are per-metric bars and a latency histogram. No plotting library; the page loads
no external resources.
"""

from __future__ import annotations

import math
from html import escape

from eval.grounding import LOWER_IS_BETTER, RATE_METRICS
from eval.harness import RunReport
from eval.report import METRIC_LABELS, fmt, judge_notes, latencies

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em}
th{background:#f3f3f3}td.num{text-align:right}svg text{font-size:12px;font-family:sans-serif}
.bad{color:#a40000}
"""


def metric_bars_svg(values: dict[str, float | None], width: int = 640) -> str:
    """Horizontal bars on a 0..1 scale, one per metric; n/a metrics show no bar."""
    label_w, bar_h, gap = 230, 20, 8
    plot_w = width - label_w - 60
    height = len(values) * (bar_h + gap) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="metrics">'
    ]
    for i, (name, value) in enumerate(values.items()):
        y = 10 + i * (bar_h + gap)
        label = METRIC_LABELS.get(name, name) + (" ↓" if name in LOWER_IS_BETTER else "")
        parts.append(f'<text x="0" y="{y + 14}">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_h}" fill="#eee"/>')
        if value is not None:
            colour = "#c0504d" if name in LOWER_IS_BETTER else "#4f81bd"
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{y}" '
                f'width="{plot_w * max(0.0, min(1.0, value)):.1f}" height="{bar_h}" '
                f'fill="{colour}"/>'
            )
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 14}">{fmt(value)}</text>')
    axis_y = height - 14
    for tick in (0.0, 0.5, 1.0):
        x = label_w + plot_w * tick
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 12}" text-anchor="middle">{tick:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(values: list[float], bins: int = 10, width: int = 640, height: int = 220) -> str:
    """Histogram of `values` (seconds) with equal-width bins; an empty list draws a note."""
    if not values:
        return "<p>No latencies recorded.</p>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / span * bins))] += 1
    left, bottom, top = 40, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(counts)
    bar_w = plot_w / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="latency histogram">'
    ]
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x = left + i * bar_w
        parts.append(
            f'<rect class="bin" x="{x:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{bar_w - 2:.1f}" height="{h:.1f}" fill="#9bbb59">'
            f"<title>{count}</title></rect>"
        )
    for i in range(0, bins + 1, max(1, bins // 5)):
        x = left + i * bar_w
        label = low + span * i / bins
        parts.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle">{label:.2f}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height}" text-anchor="middle">'
        "seconds per question</text>"
    )
    parts.append(f'<text x="4" y="{top + 10}">{peak}</text><text x="4" y="{top + plot_h}">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def _question_table(report: RunReport) -> str:
    head = (
        "<tr><th>id</th><th>question</th><th>answerable</th><th>abstained</th>"
        "<th>cites relevant</th><th>relevant/cited</th><th>removed</th><th>cit. recall</th>"
        "<th>cit. precision</th><th>faithful</th><th>hit</th>"
        "<th>seconds</th></tr>"
    )
    rows = [head]
    for r in report.questions:
        s, a = r.score, r.answer
        if s is None or a is None:
            rows.append(
                f"<tr><td>{escape(r.id)}</td><td>{escape(r.question.question)}</td>"
                f'<td colspan="10" class="bad">error: {escape(r.error or "")}</td></tr>'
            )
            continue
        cells = [
            fmt(s.answerable),
            fmt(s.abstained),
            fmt(s.answer_hit),
            f"{s.cited_relevant}/{len(s.cited_ids)}",
            str(s.sentences_removed),
            fmt(s.citation_recall, 2),
            fmt(s.citation_precision, 2),
            fmt(s.faithfulness, 2),
            fmt(s.retrieval_hit),
            f"{a.timings.total_s:.2f}",
        ]
        answer = f"<details><summary>answer</summary>{escape(a.text)}</details>"
        rows.append(
            f"<tr><td>{escape(r.id)}</td><td>{escape(r.question.question)}{answer}</td>"
            + "".join(f'<td class="num">{c}</td>' for c in cells)
            + "</tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def render_html(report: RunReport) -> str:
    """A self-contained page: setup, metric bars, latency histogram, per-question table."""
    meta = report.meta
    values = {name: getattr(report.metrics, name) for name in RATE_METRICS}
    times = [t for t in latencies(report) if math.isfinite(t)]
    judge = ", ".join(f"{k}={v}" for k, v in meta.judge.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>paperchat grounding eval {escape(meta.created_at)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Grounding evaluation, {escape(meta.created_at)}</h1>"
        f"<p>Dataset <code>{escape(meta.dataset)}</code> ({report.metrics.n_questions} "
        f"questions); backend <code>{escape(meta.llm)}</code>; judge {escape(judge)}; "
        f"seed {meta.seed}"
        + (f"; split <code>{escape(meta.split)}</code>" if meta.split else "")
        + ".</p>"
        + "".join(f"<p><b>Note:</b> {escape(note)}</p>" for note in judge_notes(meta))
        + "<h2>Metrics</h2>"
        + metric_bars_svg(values)
        + "<h2>Latency</h2>"
        + histogram_svg(times)
        + "<h2>Questions</h2>"
        + _question_table(report)
        + "</body></html>\n"
    )
