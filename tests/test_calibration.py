from __future__ import annotations

import pytest

from eval.abstention import best_similarities, choose_threshold, separation
from tests.fixtures.answering import SOUL, FakeRetriever, make_hit


def test_threshold_in_the_middle_of_a_clean_gap_separates_both_groups():
    chosen = choose_threshold([0.55, 0.6, 0.72], [0.1, 0.2, 0.25])
    assert chosen.threshold == 0.4
    assert (chosen.answered, chosen.abstained) == (1.0, 1.0)


def test_overlap_keeps_every_answerable_question_answered():
    chosen = choose_threshold([0.3, 0.5, 0.6, 0.7], [0.1, 0.2, 0.35, 0.4])
    assert chosen.threshold == 0.25
    assert chosen.answered == 1.0
    assert chosen.abstained == 0.5


def test_threshold_is_not_rounded_out_of_a_narrow_gap():
    chosen = choose_threshold([0.361, 0.5], [0.3605])
    assert 0.3605 < chosen.threshold < 0.361
    assert (chosen.answered, chosen.abstained) == (1.0, 1.0)


def test_separation_counts_answered_and_abstained_shares():
    result = separation([0.5, 0.2], [0.1, 0.4], 0.3)
    assert (result.answered, result.abstained) == (0.5, 0.5)


def test_best_similarities_take_the_best_hit_and_zero_without_dense_hits():
    hits = [make_hit("a", "A", "x.", similarity=0.2), SOUL]
    assert best_similarities(FakeRetriever(hits), ["What is SOUL?"]) == [(0.8, True)]
    no_dense = [make_hit("b", "B", "y.", similarity=None)]
    assert best_similarities(FakeRetriever(no_dense), ["What is SOUL?"]) == [(0.0, False)]


def test_choose_threshold_needs_answerable_questions():
    with pytest.raises(ValueError):
        choose_threshold([], [0.5])
