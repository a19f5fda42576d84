from __future__ import annotations

from eval.questions import EvalQuestion
from eval.selection import collect, grid, score
from rag.answering.selection import SelectionPolicy
from tests.fixtures.answering import FakeRetriever
from tests.test_selection import ERASE_A, ERASE_B, QUESTION, STYLE

LABELLED = EvalQuestion(question=QUESTION, relevant_ids=["p:erase-a", "p:erase-b"])
UNANSWERABLE = EvalQuestion(question="Who won?", answerable=False)


def test_selection_is_scored_against_the_gold_papers_without_a_model():
    rows = collect(FakeRetriever([ERASE_A, STYLE, ERASE_B]), [LABELLED, UNANSWERABLE], k=3)
    assert len(rows) == 1  # out-of-corpus questions have nothing to select
    shipped = score(rows, SelectionPolicy())
    assert (shipped.hit, shipped.precision, shipped.recall, shipped.sources) == (1, 1, 1, 2)
    everything = score(rows, SelectionPolicy(3, 0.0, 0.0, 0.0))
    assert everything.precision == round(2 / 3, 3)
    assert everything.f1 < shipped.f1


def test_the_grid_puts_the_best_f1_first():
    rows = collect(FakeRetriever([ERASE_A, STYLE, ERASE_B]), [LABELLED], k=3)
    ranked = grid(rows)
    assert ranked[0][1].f1 == max(s.f1 for _, s in ranked)
    assert ranked[0][1].f1 == 1.0
