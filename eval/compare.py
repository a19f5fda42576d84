"""Compare two runs: the aggregate deltas, and question by question what got better or worse.

Questions are matched by their question text (ids are line numbers and shift when a dataset is
edited). Per question, each metric that changed counts as better or worse by its direction;
a question that went from answered to abstained (or back) is reported as such.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from eval.grounding import LOWER_IS_BETTER, RATE_METRICS, QuestionScore
from eval.harness import RunReport
from eval.report import METRIC_LABELS, fmt

_PER_QUESTION = ("citation_recall", "citation_precision", "faithfulness", "retrieval_recall")
_EPS = 1e-9


class MetricDelta(BaseModel):
    """One aggregate metric in both runs."""

    metric: str
    a: float | None
    b: float | None
    delta: float | None
    verdict: str = Field(description="better, worse, same, or n/a")


class QuestionChange(BaseModel):
    """What changed for one question present in both runs."""

    question: str
    verdict: str = Field(description="better, worse, mixed or same")
    changes: dict[str, tuple[float | bool | None, float | bool | None]] = Field(
        default_factory=dict, description="metric -> (run A, run B), only those that changed"
    )


class Comparison(BaseModel):
    """Result of `compare_runs`."""

    run_a: str
    run_b: str
    metrics: list[MetricDelta]
    questions: list[QuestionChange]
    only_in_a: list[str] = Field(default_factory=list)
    only_in_b: list[str] = Field(default_factory=list)

    def count(self, verdict: str) -> int:
        """Number of questions with this verdict."""
        return sum(q.verdict == verdict for q in self.questions)


def _direction(metric: str, a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "same" if a is None and b is None else "n/a"
    if abs(b - a) < _EPS:
        return "same"
    improved = (b < a) if metric in LOWER_IS_BETTER else (b > a)
    return "better" if improved else "worse"


def _abstention_verdict(answerable: bool, a: bool, b: bool) -> str:
    if a == b:
        return "same"
    # Refusing an unanswerable question is right; refusing an answerable one is wrong.
    return "better" if b == (not answerable) else "worse"


def compare_scores(question: str, a: QuestionScore, b: QuestionScore) -> QuestionChange:
    """Per-question comparison of two scores for the same question."""
    change = QuestionChange(question=question, verdict="same")
    verdicts = set()
    if a.abstained != b.abstained:
        change.changes["abstained"] = (a.abstained, b.abstained)
        verdicts.add(_abstention_verdict(a.answerable, a.abstained, b.abstained))
    for metric in _PER_QUESTION:
        va, vb = getattr(a, metric), getattr(b, metric)
        direction = _direction(metric, va, vb)
        if direction in ("better", "worse"):
            change.changes[metric] = (va, vb)
            verdicts.add(direction)
        elif direction == "n/a" and not change.changes.get("abstained"):
            change.changes[metric] = (va, vb)
    if verdicts == {"better"}:
        change.verdict = "better"
    elif verdicts == {"worse"}:
        change.verdict = "worse"
    elif verdicts:
        change.verdict = "mixed"
    return change


def compare_runs(a: RunReport, b: RunReport, name_a: str = "A", name_b: str = "B") -> Comparison:
    """Compare run B against run A (B is the new one: "better" means B improved on A)."""
    metrics = []
    for name in RATE_METRICS:
        va, vb = getattr(a.metrics, name), getattr(b.metrics, name)
        delta = vb - va if va is not None and vb is not None else None
        metrics.append(
            MetricDelta(metric=name, a=va, b=vb, delta=delta, verdict=_direction(name, va, vb))
        )
    scores_a = {r.question.question: r.score for r in a.questions if r.score is not None}
    scores_b = {r.question.question: r.score for r in b.questions if r.score is not None}
    questions = [compare_scores(q, scores_a[q], scores_b[q]) for q in scores_a if q in scores_b]
    return Comparison(
        run_a=name_a,
        run_b=name_b,
        metrics=metrics,
        questions=questions,
        only_in_a=[q for q in scores_a if q not in scores_b],
        only_in_b=[q for q in scores_b if q not in scores_a],
    )


def render_comparison(comp: Comparison) -> str:
    """Plain text for the terminal: metric table, then changed questions, worse first."""
    lines = [
        f"A = {comp.run_a}",
        f"B = {comp.run_b}",
        "",
        f"{'metric':34} {'A':>7} {'B':>7} {'delta':>7}",
    ]
    for m in comp.metrics:
        delta = "–" if m.delta is None else f"{m.delta:+.3f}"
        mark = {"better": "  better", "worse": "  WORSE"}.get(m.verdict, "")
        lines.append(f"{METRIC_LABELS[m.metric]:34} {fmt(m.a):>7} {fmt(m.b):>7} {delta:>7}{mark}")
    lines += [
        "",
        f"Questions: {comp.count('better')} better, {comp.count('worse')} worse, "
        f"{comp.count('mixed')} mixed, {comp.count('same')} unchanged.",
    ]
    order = {"worse": 0, "mixed": 1, "better": 2}
    changed = sorted(
        (q for q in comp.questions if q.verdict != "same"), key=lambda q: order[q.verdict]
    )
    for q in changed:
        detail = "; ".join(f"{k} {fmt(va, 2)} -> {fmt(vb, 2)}" for k, (va, vb) in q.changes.items())
        lines.append(f"  {q.verdict.upper():6} {q.question[:70]}  ({detail})")
    for label, qs in (("only in A", comp.only_in_a), ("only in B", comp.only_in_b)):
        if qs:
            lines.append(f"{len(qs)} question(s) {label}: " + "; ".join(q[:50] for q in qs))
    return "\n".join(lines)
