"""Calibrate `abstain_threshold`: best dense similarity of answerable vs out-of-corpus questions.

    python -m rag.calibration eval/datasets/dev_retrieval.jsonl eval/datasets/dev_unanswerable.jsonl

runs retrieval for every question of the given datasets against the configured store, prints
the best dense similarity per question (and whether one paper holds all its terms, which answers
it whatever the similarity) and the threshold that best separates the two groups (highest
balanced accuracy; among equally good thresholds, the middle one). docs/abstention.md
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

    @property
    def balanced_accuracy(self) -> float:
        """Mean of the two shares."""
        return (self.answered + self.abstained) / 2


def separation(answerable: Sequence[float], unanswerable: Sequence[float], t: float) -> Separation:
    """Score threshold `t` on the two groups of best similarities."""
    answered = sum(v >= t for v in answerable) / len(answerable) if answerable else 1.0
    abstained = sum(v < t for v in unanswerable) / len(unanswerable) if unanswerable else 1.0
    return Separation(round(t, 4), answered, abstained)


def choose_threshold(answerable: Sequence[float], unanswerable: Sequence[float]) -> Separation:
    """The threshold with the best balanced accuracy; the middle one of equally good choices.

    Candidates are the midpoints between consecutive distinct observed similarities.
    """
    values = sorted(set(answerable) | set(unanswerable))
    if len(values) < 2:
        raise ValueError("need at least two distinct similarities to place a threshold")
    candidates = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    scored = [separation(answerable, unanswerable, t) for t in candidates]
    best = max(s.balanced_accuracy for s in scored)
    optimal = [s.threshold for s in scored if s.balanced_accuracy == best]
    middle = (min(optimal) + max(optimal)) / 2
    return separation(answerable, unanswerable, round(middle, 2))


def best_similarities(
    retriever: object, questions: Sequence[str], k: int = 5
) -> list[tuple[float, bool]]:
    """(best dense similarity, every question term in one paper) per question.

    The similarity is 0.0 when dense search saw none of the retrieved papers.
    """
    from rag.answer import best_similarity, lexical_coverage

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
    from rag.retrieval import HybridRetriever

    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    rows = [row for path in paths for row in _questions(path)]
    retriever = HybridRetriever.from_settings(Settings())
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
