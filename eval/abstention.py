"""Calibrate `abstain_threshold`: best dense similarity of answerable vs out-of-corpus questions.

    python -m eval.abstention eval/datasets/dev_retrieval.jsonl eval/datasets/dev_unanswerable.jsonl

runs retrieval for every question of the given datasets against the configured store, prints
the best dense similarity per question (and whether one paper holds all its terms, which answers
it whatever the similarity) and the threshold `choose_threshold` places: the highest that still
answers every answerable question, halfway into the gap below it. docs/abstention.md
records the numbers behind the default.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Separation:
    """How well a threshold separates answerable from unanswerable questions."""

    threshold: float
    answered: float
    """Share of answerable questions at or above the threshold (answered)."""
    abstained: float
    """Share of unanswerable questions below the threshold (abstained on)."""


def separation(answerable: Sequence[float], unanswerable: Sequence[float], t: float) -> Separation:
    """Score threshold `t` on the two groups of best similarities."""
    answered = sum(v >= t for v in answerable) / len(answerable) if answerable else 1.0
    abstained = sum(v < t for v in unanswerable) / len(unanswerable) if unanswerable else 1.0
    return Separation(round(t, 4), answered, abstained)


def choose_threshold(answerable: Sequence[float], unanswerable: Sequence[float]) -> Separation:
    """The highest threshold that still answers every answerable question, placed mid-gap.

    Recall first: a wrong abstention has no second chance, while an out-of-corpus question that
    passes the threshold still meets the model's refusal instruction (or, extractive, the check
    that a sentence mentions the question's terms). The threshold sits halfway between the
    lowest answerable similarity and the highest unanswerable one below it, rounded to two
    decimals when that keeps it strictly between them.
    """
    if not answerable:
        raise ValueError("need at least one answerable question to place a threshold")
    low = min(answerable)
    below = [value for value in unanswerable if value < low]
    floor = max(below) if below else 0.0
    middle = (floor + low) / 2
    threshold = round(middle, 2) if floor < round(middle, 2) < low else round(middle, 4)
    return separation(answerable, unanswerable, threshold)


def best_similarities(
    retriever: object, questions: Sequence[str], k: int = 5
) -> list[tuple[float, bool]]:
    """(best dense similarity, every question term in one paper) per question.

    The similarity is 0.0 when dense search saw none of the retrieved papers.
    """
    from rag.answering.pipeline import best_similarity, lexical_coverage

    out = []
    for question in questions:
        hits = retriever.retrieve(question, k=k)  # type: ignore[attr-defined]
        out.append((best_similarity(hits) or 0.0, lexical_coverage(question, hits) >= 1.0))
    return out


def _questions(path: Path) -> list[tuple[str, bool]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            obj = json.loads(line)
            rows.append((obj["question"], bool(obj.get("answerable", True))))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Print per-question similarities and the chosen threshold for the given datasets."""
    from paperchat.offline import apply_offline_env

    apply_offline_env()
    from paperchat.settings import Settings
    from rag.factory import open_retriever

    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    rows = [row for path in paths for row in _questions(path)]
    retriever = open_retriever(Settings())
    sims = best_similarities(retriever, [q for q, _ in rows])
    groups: dict[bool, list[float]] = {True: [], False: []}
    raw: dict[bool, list[float]] = {True: [], False: []}
    for (question, answerable), (sim, covered) in zip(rows, sims, strict=True):
        # a question whose terms all occur in one paper is answered whatever its similarity
        groups[answerable].append(1.0 if covered else sim)
        raw[answerable].append(sim)
        kind = "answerable  " if answerable else "unanswerable"
        print(f"{sim:.3f}  {'all-terms' if covered else '         '}  {kind}  {question}")
    for flag, name in ((True, "answerable"), (False, "unanswerable")):
        values = raw[flag]
        if values:
            covered_count = sum(v == 1.0 for v in groups[flag])
            print(
                f"{name}: n={len(values)} similarity min={min(values):.3f} "
                f"median={statistics.median(values):.3f} max={max(values):.3f}; "
                f"all terms in one paper: {covered_count}"
            )
    chosen = choose_threshold(groups[True], groups[False])
    print(
        f"threshold={chosen.threshold:.2f} answered={chosen.answered:.0%} of answerable, "
        f"abstained={chosen.abstained:.0%} of unanswerable"
    )


if __name__ == "__main__":
    main()
