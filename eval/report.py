"""Write a run to disk, and read it back.

`report.json` holds everything, `report.md` is for a person, `report.html` is the same with
inline-SVG plots (see `eval.report_html`).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from eval.grounding import RATE_METRICS, aggregate
from eval.harness import QuestionResult, RunMeta, RunReport
from paperchat.errors import InputError

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"

METRIC_LABELS = {
    "answer_hit": "Answer cites a relevant paper",
    "citation_relevance": "Cited papers that are relevant",
    "source_precision": "Sources shown that are relevant",
    "source_recall": "Relevant papers shown as sources",
    "citation_recall": "Citation recall",
    "citation_precision": "Citation precision",
    "faithfulness": "Faithfulness (claims)",
    "abstention_accuracy": "Abstention on unanswerable",
    "false_abstention": "False abstention on answerable",
    "retrieval_hit": "Retrieval hit",
    "retrieval_recall": "Retrieval recall",
}


def fmt(value: float | bool | None, digits: int = 3) -> str:
    """A metric for people: `–` when not applicable."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.{digits}f}"


def latencies(report: RunReport) -> list[float]:
    """Seconds per answered question (from `Answer.timings.total_s`)."""
    return [r.answer.timings.total_s for r in report.questions if r.answer is not None]


def write_reports(report: RunReport, out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `out_dir` (created)."""
    from eval.report_html import render_html

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / REPORT_JSON,
        "md": out_dir / REPORT_MD,
        "html": out_dir / REPORT_HTML,
    }
    paths["json"].write_text(report.model_dump_json(indent=2), encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths


def load_report(path: Path) -> RunReport:
    """Read a run from its folder or its report.json."""
    file = path / REPORT_JSON if path.is_dir() else path
    try:
        return RunReport.model_validate(json.loads(file.read_text(encoding="utf-8")))
    except FileNotFoundError as err:
        raise InputError(str(file), "no report here; pass a run folder or its report.json") from err
    except (json.JSONDecodeError, ValueError) as err:
        raise InputError(str(file), f"not a paperchat eval report ({err})") from err


def _metric_rows(report: RunReport) -> list[str]:
    m = report.metrics
    counts = {
        "answer_hit": f"{m.n_answerable} answerable",
        "citation_relevance": f"{fmt(m.citations_per_answer, 2)} citations per answer",
        "citation_recall": f"{m.n_sentences} sentences",
        "citation_precision": f"{m.n_citations} citations",
        "faithfulness": f"{m.n_claims} claims",
        "abstention_accuracy": f"{m.n_unanswerable} unanswerable",
        "false_abstention": f"{m.n_answerable} answerable",
    }
    rows = ["| Metric | Value | Over |", "|---|---:|---|"]
    for name in RATE_METRICS:
        value = getattr(m, name)
        rows.append(f"| {METRIC_LABELS[name]} | {fmt(value)} | {counts.get(name, '')} |")
    rows.append(
        f"| Sentences removed by verification | {m.sentences_removed} | "
        f"{m.answers_with_removals} answers |"
    )
    return rows


def breakdown(report: RunReport) -> list[str]:
    """Relevance and abstention per question kind and wording (when the dataset labels them)."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in report.questions:
        q = r.question
        if r.score is None or (q.kind is None and q.wording is None):
            continue
        if q.answerable:
            keys = [f"answerable, {q.kind or '?'}", f"answerable, {q.wording or '?'}"]
        else:
            keys = [f"out of corpus, {q.kind or '?'}"]
        for key in keys:
            groups.setdefault(key, []).append(r)
    if not groups:
        return []
    rows = [
        "| questions | n | cites a relevant paper | cited papers relevant | citations per answer "
        "| abstained |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(groups):
        m = aggregate([r.score for r in groups[key] if r.score is not None])
        rows.append(
            f"| {key} | {m.n_questions} | {fmt(m.answer_hit)} | {fmt(m.citation_relevance)} | "
            f"{fmt(m.citations_per_answer, 2)} | {m.n_questions - m.n_answered} |"
        )
    return rows


def judge_notes(meta: RunMeta) -> list[str]:
    """What a reader must know about who graded whom (see docs/grounding.md)."""
    notes = []
    model = str(meta.judge.get("model", ""))
    if model and model == meta.llm:
        notes.append(
            f"The judge is the same model that wrote the answers ({model}): it grades its own "
            "answers, so citation recall/precision and faithfulness may read high."
        )
    if meta.judge.get("name") == "lexical" and meta.settings.get("verify", False):
        notes.append(
            "The answers were verified by paperchat's lexical support check "
            "(rag/answering/support.py) before the lexical judge graded them; both read word "
            "overlap, numbers and names, so the lexical judge's citation figures on these "
            "answers are partly true by construction. The relevance metrics use gold labels "
            "and no judge."
        )
    return notes


def _question_row(r: QuestionResult) -> str:
    s, a = r.score, r.answer
    if s is None or a is None:
        return f"| {r.id} | {_cell(r.question.question)} | error: {_cell(r.error or '')} ||||||||||"
    return (
        f"| {r.id} | {_cell(r.question.question)} | {fmt(s.answerable)} | {fmt(s.abstained)} | "
        f"{fmt(s.answer_hit)} | {s.cited_relevant}/{len(s.cited_ids)} | "
        f"{fmt(s.citation_recall, 2)} | {fmt(s.citation_precision, 2)} | "
        f"{fmt(s.faithfulness, 2)} | {s.sentences_removed} | {fmt(s.retrieval_hit)} | "
        f"{a.timings.total_s:.2f} |"
    )


def _cell(text: str, width: int = 70) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def _problems(report: RunReport) -> list[str]:
    lines = []
    for r in report.questions:
        if r.score is None:
            continue
        bad = [v for v in r.score.sentences if not v.supported]
        imprecise = [
            (v, c) for v in r.score.sentences for c in v.citations if v.supported and not c.precise
        ]
        if not bad and not imprecise:
            continue
        lines.append(f"### {r.id}: {r.question.question}\n")
        for v in bad:
            cited = ", ".join(f"[{c.number}] {c.paper_id}" for c in v.citations) or "no citation"
            lines.append(f"- unsupported ({cited}): {_cell(v.sentence, 300)}")
        for v, c in imprecise:
            lines.append(f"- [{c.number}] {c.paper_id} not needed for: {_cell(v.sentence, 300)}")
        lines.append("")
    return lines


def render_markdown(report: RunReport) -> str:
    """The run as a Markdown page: setup, metrics, a per-question table, then the problems."""
    meta, times = report.meta, latencies(report)
    judge = ", ".join(f"{k}={v}" for k, v in meta.judge.items())
    lines = [
        f"# Grounding evaluation, {meta.created_at}",
        "",
        f"- Dataset: `{meta.dataset}` (sha256 {meta.dataset_sha256[:12]}, "
        f"{report.metrics.n_questions} questions"
        + (f", split `{meta.split}`)" if meta.split else ")"),
        f"- Answering backend: `{meta.llm}`; judge: {judge}",
        f"- Seed {meta.seed}; sentences under {meta.min_words} words are not scored",
        f"- paperchat {meta.versions.get('paperchat', '?')}, "
        f"llama-index-core {meta.versions.get('llama-index-core', '?')}",
    ]
    if meta.command:
        lines.append(f"- Command: `{meta.command}`")
    lines += [f"- **Note:** {note}" for note in judge_notes(meta)]
    lines += ["", "## Metrics", "", *_metric_rows(report), ""]
    by_kind = breakdown(report)
    if by_kind:
        lines += ["## By kind of question", "", *by_kind, ""]
    if times:
        lines.append(
            f"Latency per question: median {statistics.median(times):.2f} s, "
            f"max {max(times):.2f} s.\n"
        )
    lines += [
        "## Questions",
        "",
        "| id | question | answerable | abstained | cites relevant | relevant/cited "
        "| cit. recall | cit. precision | faithful | removed | retrieval hit | seconds |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---:|",
        *(_question_row(r) for r in report.questions),
        "",
    ]
    problems = _problems(report)
    if problems:
        lines += ["## Unsupported sentences and unneeded citations", "", *problems]
    return "\n".join(lines).rstrip() + "\n"
