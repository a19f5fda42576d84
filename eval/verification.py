"""Calibrate and score the answer verifier against hand labels (`paperchat eval verification`).

The labelled set (`eval/datasets/verify_labels.jsonl`) holds draft sentences the local model
wrote for dev questions, before verification (`Answer.draft`), each with the sources the model
was shown and a human label: which of those sources state the sentence (`supported_by`, empty
when none does). One JSON object per line:

    {"id": "a001-2", "split": "tune", "question": "...", "sentence": "...", "cited": [1],
     "sources": [{"number": 1, "paper_id": "p:...", "title": "...", "abstract": "..."}],
     "supported_by": [1]}

`export_drafts` writes the unlabelled rows from an eval report. `score` replays the verifier
(`rag.answering.verify.Verifier`) on every row and counts, against the labels:

- **shown unsupported**: the sentence is shown citing a source that does not state it (the
  failure the verifier exists to prevent; lower is better);
- **kept supported**: of the sentences some source states, the share shown with a source that
  states them (what verification must not throw away);
- **accuracy**: shown-with-a-right-source or not-shown-when-nothing-states-it, over all rows.

A replaced sentence shows its source's own sentence: it never counts as shown unsupported, and
counts as kept when that source states the draft sentence too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from eval.tuning import grid_search
from rag.answering.draft import DraftSentence, parse_reply
from rag.answering.evidence import Evidence
from rag.answering.verify import Verifier, VerifyPolicy
from rag.types import Answer, Hit


class LabelledSource(BaseModel):
    """One source the model was shown, numbered as in its prompt."""

    number: int
    paper_id: str
    title: str
    abstract: str


class LabelledSentence(BaseModel):
    """One draft sentence, its sources, and (once labelled) which sources state it."""

    id: str
    split: str | None = None
    question: str
    sentence: str
    cited: list[int] = Field(default_factory=list)
    sources: list[LabelledSource]
    supported_by: list[int] | None = Field(
        default=None,
        description="Numbers of the sources that state the sentence; None: unlabelled.",
    )


def export_drafts(questions: Iterable[tuple[str, str | None, Answer]]) -> list[LabelledSentence]:
    """Unlabelled rows for every sentence of every draft: (question id, split, answer)."""
    rows = []
    for qid, split, answer in questions:
        if not answer.draft.strip() or not answer.sources:
            continue
        sources = [
            LabelledSource(
                number=n, paper_id=h.paper_id, title=h.title, abstract=h.abstract or h.snippet
            )
            for n, h in enumerate(answer.sources, start=1)
        ]
        for index, sentence in enumerate(parse_reply(answer.draft), start=1):
            rows.append(
                LabelledSentence(
                    id=f"{qid}-{index}",
                    split=split,
                    question=answer.standalone_question,
                    sentence=sentence.text,
                    cited=list(sentence.cited),
                    sources=sources,
                )
            )
    return rows


def read_labels(path: Path, split: str | None = None) -> list[LabelledSentence]:
    """The labelled rows of `path` (of one split when given)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = LabelledSentence.model_validate_json(line)
            if row.supported_by is not None and (split is None or row.split == split):
                rows.append(row)
    return rows


def write_rows(rows: Sequence[LabelledSentence], path: Path) -> None:
    """Write rows as JSONL."""
    path.write_text(
        "".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in rows), encoding="utf-8"
    )


@dataclass(frozen=True)
class VerifierScore:
    """Verifier decisions against the labels (see module doc)."""

    rows: int
    shown_unsupported: float
    kept_supported: float
    accuracy: float


def _evidence(row: LabelledSentence) -> list[Evidence]:
    hits = [
        Hit(paper_id=s.paper_id, title=s.title, score=0.0, snippet="", abstract=s.abstract)
        for s in row.sources
    ]
    return [Evidence(hit, rank, ()) for rank, hit in enumerate(hits)]


def score(rows: Sequence[LabelledSentence], policy: VerifyPolicy) -> VerifierScore:
    """Replay the verifier with `policy` on labelled rows."""
    shown_bad = kept = supported = right = 0
    for row in rows:
        outcome = Verifier(_evidence(row), policy).check(
            DraftSentence(row.sentence, tuple(row.cited))
        )
        truth = set(row.supported_by or [])
        shown = set(outcome.shown.sources) if outcome.shown is not None else set()
        replaced = outcome.edit is not None and outcome.edit.kind == "replaced"
        good = bool(shown) and shown <= truth
        shown_bad += bool(shown) and not good and not replaced
        if truth:
            supported += 1
            kept += good
        right += good or (not truth and (replaced or not shown))
    n = len(rows) or 1
    return VerifierScore(
        rows=len(rows),
        shown_unsupported=round(shown_bad / n, 3),
        kept_supported=round(kept / (supported or 1), 3),
        accuracy=round(right / n, 3),
    )


GRID: dict[str, tuple[Any, ...]] = {
    "min_token_recall": (0.4, 0.5, 0.6, 0.7, 0.75, 0.8),
    "min_bigram_recall": (0.0, 0.15, 0.25, 0.35),
    "partial_coverage": (0.35, 0.5, 0.65, 1.01),
}
"""The policies `grid` tries (partial_coverage 1.01: never replace)."""


def grid(rows: Sequence[LabelledSentence]) -> list[tuple[VerifyPolicy, VerifierScore]]:
    """Every policy of `GRID`, best accuracy first (ties: fewer unsupported sentences shown)."""
    return grid_search(
        GRID,
        VerifyPolicy,
        lambda policy: score(rows, policy),
        lambda s: (-s.accuracy, s.shown_unsupported),
    )
