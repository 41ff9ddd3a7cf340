"""Fusing rankings from several retrievers into one."""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank(rankings: Sequence[Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal-rank fusion (Cormack et al. 2009): sum of 1 / (k + rank) over the rankings."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def convex(
    dense: dict[int, float], lexical: dict[int, float], alpha: float = 0.5
) -> dict[int, float]:
    """alpha * dense + (1 - alpha) * lexical, each min-max normalised over its own results;
    an item missing from one list scores 0 there."""
    a, b = _minmax(dense), _minmax(lexical)
    return {i: alpha * a.get(i, 0.0) + (1 - alpha) * b.get(i, 0.0) for i in set(a) | set(b)}


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    return {i: (s - low) / (high - low) for i, s in scores.items()}
