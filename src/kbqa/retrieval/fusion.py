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


# How each convex fusion setting normalises its two score lists.
NORMALISATION = {"convex": "minmax", "zscore": "zscore"}


def convex(
    dense: dict[int, float],
    lexical: dict[int, float],
    alpha: float = 0.5,
    normalise: str = "minmax",
) -> dict[int, float]:
    """alpha * dense + (1 - alpha) * lexical, each normalised over its own results: "minmax"
    maps each list onto 0..1, "zscore" measures each score in standard deviations from its
    list's mean. An item missing from one list scores 0 there (the mean, for z-scores). Give
    both lists the same items (true scores for the union) and nothing is missing.

    Min-max makes every list's best score 1, however far it stands out. A z-score keeps how
    far, in the list's own spread: one BM25 score far above the pack (the question named the
    passage's rare words) outweighs a dense list whose best is only a little ahead of its
    pack. On the dev splits of python-faq (where BM25 alone is weak) and halueval-qa (where it
    is strong) no min-max alpha suits both; z-scores at 0.8 gain on both (docs/evaluation.md).
    """
    scale = {"minmax": _minmax, "zscore": _zscore}[normalise]
    a, b = scale(dense), scale(lexical)
    return {i: alpha * a.get(i, 0.0) + (1 - alpha) * b.get(i, 0.0) for i in set(a) | set(b)}


def _zscore(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    if spread == 0:
        return dict.fromkeys(scores, 0.0)
    return {i: (s - mean) / spread for i, s in scores.items()}


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    return {i: (s - low) / (high - low) for i, s in scores.items()}
