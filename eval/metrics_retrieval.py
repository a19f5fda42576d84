"""Ranking metrics for retrieval: pure functions of a ranked id list and the relevant ids.

Relevance is binary. Every function takes `ranked` (paper ids, best first; duplicates count
once, at their first position) and `relevant` (the ids that answer the question).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

METRIC_NAMES = ("hit@1", "hit@5", "mrr@10", "ndcg@10", "recall@10")


def _dedupe(ranked: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def hit_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when any relevant id is in the top `k`, else 0.0."""
    return 1.0 if any(pid in relevant for pid in _dedupe(ranked)[:k]) else 0.0


def mrr_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Reciprocal rank (1-based) of the first relevant id in the top `k`; 0.0 if none."""
    for rank, pid in enumerate(_dedupe(ranked)[:k], start=1):
        if pid in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Normalised discounted cumulative gain at `k` with binary gains (log2 discount)."""
    if not relevant:
        return 0.0
    dcg = sum(
        1.0 / math.log2(rank + 1)
        for rank, pid in enumerate(_dedupe(ranked)[:k], start=1)
        if pid in relevant
    )
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def recall_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Share of the relevant ids found in the top `k`."""
    if not relevant:
        return 0.0
    found = sum(1 for pid in _dedupe(ranked)[:k] if pid in relevant)
    return found / len(set(relevant))


def all_metrics(ranked: Sequence[str], relevant: Collection[str]) -> dict[str, float]:
    """Every metric in `METRIC_NAMES` for one question."""
    return {
        "hit@1": hit_at(ranked, relevant, 1),
        "hit@5": hit_at(ranked, relevant, 5),
        "mrr@10": mrr_at(ranked, relevant, 10),
        "ndcg@10": ndcg_at(ranked, relevant, 10),
        "recall@10": recall_at(ranked, relevant, 10),
    }


def mean_metrics(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Average each metric over questions (0.0 for an empty list)."""
    if not rows:
        return {name: 0.0 for name in METRIC_NAMES}
    return {name: sum(row[name] for row in rows) / len(rows) for name in METRIC_NAMES}
