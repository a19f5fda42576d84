from __future__ import annotations

from pathlib import Path

from eval.verification import (
    LabelledSentence,
    LabelledSource,
    export_drafts,
    grid,
    read_labels,
    score,
    write_rows,
)
from rag.answering.verify import VerifyPolicy
from rag.types import Answer
from tests.fixtures.answering import DEFT, SOUL

SOURCES = [
    LabelledSource(number=1, paper_id=SOUL.paper_id, title=SOUL.title, abstract=SOUL.abstract),
    LabelledSource(number=2, paper_id=DEFT.paper_id, title=DEFT.title, abstract=DEFT.abstract),
]


def row(sentence: str, cited: list[int], supported_by: list[int]) -> LabelledSentence:
    return LabelledSentence(
        id=sentence[:10],
        split="tune",
        question="q",
        sentence=sentence,
        cited=cited,
        sources=SOURCES,
        supported_by=supported_by,
    )


ROWS = [
    row("SOUL is a second-order unlearning framework.", [1], [1]),
    row("SOUL was first used in the Milgram experiment.", [1], []),
    row("DEFT reduces the activation density of RoBERTa.", [1], [2]),
]


def test_the_verifier_is_scored_against_the_labels_and_beats_no_verification():
    verified = score(ROWS, VerifyPolicy())
    unverified = score(ROWS, VerifyPolicy(enabled=False))
    assert verified.shown_unsupported == 0.0
    assert verified.kept_supported == 1.0  # the miscited DEFT sentence is re-cited
    assert unverified.shown_unsupported == round(2 / 3, 3)
    assert verified.accuracy > unverified.accuracy


def test_the_grid_ranks_policies_by_accuracy():
    ranked = grid(ROWS)
    assert ranked[0][1].accuracy == max(s.accuracy for _, s in ranked)


def test_drafts_are_exported_sentence_by_sentence_and_labels_read_back(tmp_path: Path):
    answer = Answer(
        question="q",
        standalone_question="What is SOUL?",
        text="",
        sources=[SOUL, DEFT],
        draft="[1] SOUL unlearns data. It was used by Milgram [2].",
    )
    rows = export_drafts([("a001", "tune", answer)])
    assert [(r.id, r.sentence, r.cited) for r in rows] == [
        ("a001-1", "SOUL unlearns data.", [1]),
        ("a001-2", "It was used by Milgram.", [2]),
    ]
    assert [s.paper_id for s in rows[0].sources] == [SOUL.paper_id, DEFT.paper_id]
    path = tmp_path / "labels.jsonl"
    write_rows([rows[0].model_copy(update={"supported_by": [1]}), rows[1]], path)
    assert [r.id for r in read_labels(path, "tune")] == ["a001-1"]  # unlabelled rows skipped
