"""Fusing rankings from several retrievers into one."""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank(
    rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> dict[int, float]:
    """Reciprocal-rank fusion (Cormack et al. 2009): sum of weight / (k + rank) over the
    rankings (every weight 1 unless given)."""
    weights = [1.0] * len(rankings) if weights is None else weights
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, 1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def convex(
    dense: dict[int, float], lexical: dict[int, float], alpha: float = 0.5
) -> dict[int, float]:
    """alpha * dense + (1 - alpha) * lexical, each min-max normalised over its own results;
    an item missing from one list scores 0 there. Give both lists the same items (true scores
    for the union) and nothing is missing."""
    a, b = _minmax(dense), _minmax(lexical)
    return {i: alpha * a.get(i, 0.0) + (1 - alpha) * b.get(i, 0.0) for i in set(a) | set(b)}


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    return {i: (s - low) / (high - low) for i, s in scores.items()}
