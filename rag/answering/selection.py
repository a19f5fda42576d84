"""Source selection: pass the model only the retrieved papers that bear on the question.

Retrieval returns a fixed number of papers; most questions are answered by one or two of
them, and a small model cites whatever it is shown. Each retrieved paper is described by
signals retrieval already has (`Candidate`): its dense similarity to the question relative to
the best one, and how much of the question its title and abstract cover (question stems,
weighted by how few of the retrieved papers contain them). `select` keeps the best-ranked
paper and every other paper that passes the calibrated rule of `SelectionPolicy`, up to
`max_sources`, in retrieval order. docs/answering.md records the calibration (tuning split of
eval/datasets/dev_answers.jsonl) and the held-out figures. PaperQA2 asks an LLM to score each
chunk's relevance instead; on a 2-core CPU that costs more than the answer itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from paperchat.text import clean_abstract
from rag.answering.support import terms
from rag.types import Hit


@dataclass(frozen=True)
class SelectionPolicy:
    """The rule that decides which retrieved papers the model sees."""

    max_sources: int = 3
    """Never more sources than this (prompt time grows with every source)."""
    min_relative_similarity: float = 0.85
    """Keep a paper whose dense similarity is at least this share of the best paper's..."""
    min_coverage: float = 0.7
    """...or whose title and abstract hold at least this (weighted) share of the question."""
    min_coverage_with_similarity: float = 0.3
    """A paper kept for its similarity must still cover at least this share of the question."""


@dataclass(frozen=True)
class Candidate:
    """One retrieved paper and the signals the selection rule reads."""

    hit: Hit
    rank: int
    """Retrieval rank, 0 = best."""
    similarity: float
    """Dense cosine similarity to the question (0 when dense search did not see the paper)."""
    relative_similarity: float
    """`similarity` divided by the best similarity among the retrieved papers."""
    coverage: float
    """Weighted share of the question's stems in title and abstract (0..1)."""


def _paper_stems(hit: Hit) -> set[str]:
    return terms(clean_abstract(f"{hit.title}\n{hit.abstract or hit.snippet}"))


def candidates(question: str, hits: Sequence[Hit]) -> list[Candidate]:
    """Describe every retrieved paper for the selection rule."""
    if not hits:
        return []
    wanted = terms(question)
    stems = [_paper_stems(hit) for hit in hits]
    frequency: Counter[str] = Counter()
    for paper in stems:
        frequency.update(paper & wanted)
    weight = {term: math.log(1 + len(hits) / (frequency[term] or 1)) for term in wanted}
    total = sum(weight.values())
    best = max((hit.dense_similarity or 0.0) for hit in hits)
    out = []
    for rank, (hit, paper) in enumerate(zip(hits, stems, strict=True)):
        similarity = hit.dense_similarity or 0.0
        covered = sum(weight[t] for t in wanted & paper) / total if total else 0.0
        relative = similarity / best if best > 0 else 0.0
        out.append(Candidate(hit, rank, similarity, round(relative, 4), round(covered, 4)))
    return out


def keeps(candidate: Candidate, policy: SelectionPolicy) -> bool:
    """The rule for a paper other than the best-ranked one."""
    if candidate.coverage >= policy.min_coverage:
        return True
    return (
        candidate.relative_similarity >= policy.min_relative_similarity
        and candidate.coverage >= policy.min_coverage_with_similarity
    )


def select(question: str, hits: Sequence[Hit], policy: SelectionPolicy) -> list[Hit]:
    """The retrieved papers the model is shown, in retrieval order (the best one always)."""
    described = candidates(question, hits)
    chosen = [c.hit for c in described if c.rank == 0 or keeps(c, policy)]
    return chosen[: policy.max_sources]
