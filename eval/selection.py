"""Calibrate and score source selection against gold labels (`paperchat eval selection`).

For every answerable question of a labelled split, the retriever's papers are described as
the selection rule sees them (`rag.answering.selection.candidates`) and marked relevant or
not from `relevant_ids`. A `SelectionPolicy` is then scored without running any model:

- `hit`: share of questions where at least one selected paper is relevant;
- `precision` / `recall` / `f1`: per question, of the selected papers and of the relevant
  papers among the retrieved ones, averaged over questions;
- `sources`: selected papers per question (each costs prompt time).

`grid` scores every policy of a small grid; the shipped defaults were chosen with it on the
tune split (highest mean F1; docs/answering.md) and are reported on the held-out split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eval.questions import EvalQuestion
from eval.tuning import grid_search
from rag.answering.selection import Candidate, SelectionPolicy, candidates, keeps


@dataclass(frozen=True)
class LabelledQuestion:
    """One question's retrieved papers as the selection rule sees them, with gold labels."""

    question: EvalQuestion
    candidates: list[Candidate]
    relevant: frozenset[str]


@dataclass(frozen=True)
class SelectionScore:
    """How well a policy selects the relevant papers (see module doc)."""

    questions: int
    hit: float
    precision: float
    recall: float
    f1: float
    sources: float


def collect(retriever: object, questions: Iterable[EvalQuestion], k: int) -> list[LabelledQuestion]:
    """Retrieve `k` papers for every answerable, labelled question and describe them."""
    out = []
    for question in questions:
        if not question.answerable or not question.relevant_ids:
            continue
        hits = retriever.retrieve(question.question, k=k)  # type: ignore[attr-defined]
        out.append(
            LabelledQuestion(
                question, candidates(question.question, hits), frozenset(question.relevant_ids)
            )
        )
    return out


def chosen(labelled: LabelledQuestion, policy: SelectionPolicy) -> list[Candidate]:
    """The candidates `policy` passes to the model (the same rule as `selection.select`)."""
    kept = [c for c in labelled.candidates if c.rank == 0 or keeps(c, policy)]
    return kept[: policy.max_sources]


def score(rows: Sequence[LabelledQuestion], policy: SelectionPolicy) -> SelectionScore:
    """Score `policy` on labelled questions."""
    hits, precision, recall, f1, sources = 0, 0.0, 0.0, 0.0, 0
    for row in rows:
        picked = chosen(row, policy)
        right = sum(c.hit.paper_id in row.relevant for c in picked)
        findable = sum(c.hit.paper_id in row.relevant for c in row.candidates) or 1
        p = right / len(picked) if picked else 0.0
        r = right / findable
        hits += right > 0
        precision += p
        recall += r
        f1 += 2 * p * r / (p + r) if right else 0.0
        sources += len(picked)
    n = len(rows) or 1
    return SelectionScore(
        questions=len(rows),
        hit=round(hits / n, 3),
        precision=round(precision / n, 3),
        recall=round(recall / n, 3),
        f1=round(f1 / n, 3),
        sources=round(sources / n, 2),
    )


GRID = {
    "min_relative_similarity": (0.8, 0.85, 0.9, 0.95, 1.01),
    "min_coverage": (0.4, 0.5, 0.6, 0.7, 0.8, 1.01),
    "min_coverage_with_similarity": (0.0, 0.2, 0.3, 0.4),
    "max_sources": (3, 4, 5),
}
"""The policies `grid` tries (1.01 switches a signal off)."""


def grid(rows: Sequence[LabelledQuestion]) -> list[tuple[SelectionPolicy, SelectionScore]]:
    """Every policy of `GRID` with its score, best mean F1 first (ties: fewer sources)."""
    return grid_search(
        GRID, SelectionPolicy, lambda policy: score(rows, policy), lambda s: (-s.f1, s.sources)
    )
