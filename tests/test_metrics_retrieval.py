import math

import pytest

from eval.metrics_retrieval import (
    METRIC_NAMES,
    all_metrics,
    hit_at,
    mean_metrics,
    mrr_at,
    ndcg_at,
    recall_at,
)

RANKED = ["a", "b", "c", "d"]


def test_single_relevant_at_rank_three_scores_by_hand():
    got = all_metrics(RANKED, {"c"})
    assert got["hit@1"] == 0.0
    assert got["hit@5"] == 1.0
    assert got["mrr@10"] == pytest.approx(1 / 3)
    assert got["ndcg@10"] == pytest.approx(1 / math.log2(4))  # 0.5: gain at rank 3 / ideal 1
    assert got["recall@10"] == 1.0


def test_two_relevant_at_ranks_one_and_four_give_hand_computed_ndcg():
    dcg = 1.0 + 1 / math.log2(5)
    ideal = 1.0 + 1 / math.log2(3)
    assert ndcg_at(RANKED, {"a", "d"}) == pytest.approx(dcg / ideal)
    assert ndcg_at(RANKED, {"a", "d"}) == pytest.approx(0.877215, abs=1e-6)
    assert mrr_at(RANKED, {"a", "d"}) == 1.0
    assert hit_at(RANKED, {"a", "d"}, 1) == 1.0


def test_nothing_relevant_retrieved_scores_zero_everywhere():
    assert all_metrics(RANKED, {"zzz"}) == {name: 0.0 for name in METRIC_NAMES}


def test_relevant_beyond_cutoff_does_not_count():
    ranked = [f"x{i}" for i in range(10)] + ["gold"]
    assert mrr_at(ranked, {"gold"}, 10) == 0.0
    assert recall_at(ranked, {"gold"}, 10) == 0.0
    assert hit_at(ranked, {"gold"}, 5) == 0.0
    assert mrr_at(ranked, {"gold"}, 11) == pytest.approx(1 / 11)


def test_recall_counts_share_of_relevant_found_in_top_ten():
    relevant = {"a", "c", "q", "r"}
    assert recall_at(RANKED, relevant, 10) == 0.5


def test_ideal_dcg_is_capped_at_k_when_more_papers_are_relevant_than_k():
    relevant = {f"p{i}" for i in range(12)}
    ranked = sorted(relevant)[:10]
    assert ndcg_at(ranked, relevant, 10) == pytest.approx(1.0)
    assert recall_at(ranked, relevant, 10) == pytest.approx(10 / 12)


def test_duplicate_ids_count_once_at_their_first_position():
    assert mrr_at(["b", "b", "a"], {"a"}) == pytest.approx(1 / 2)
    assert recall_at(["a", "a"], {"a", "b"}) == 0.5


def test_empty_relevant_set_scores_zero_not_division_error():
    assert ndcg_at(RANKED, set()) == 0.0
    assert recall_at(RANKED, set()) == 0.0


def test_mean_metrics_averages_each_metric_over_questions():
    rows = [all_metrics(RANKED, {"a"}), all_metrics(RANKED, {"zzz"})]
    mean = mean_metrics(rows)
    assert mean["hit@1"] == 0.5
    assert mean["mrr@10"] == 0.5
    assert mean_metrics([]) == {name: 0.0 for name in METRIC_NAMES}
