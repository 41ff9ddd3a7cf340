"""Retrieval metrics, computed by ir-measures (pytrec_eval underneath), not by hand."""

from __future__ import annotations

from kbqa.errors import MissingDependencyError

NAMES = {
    "ndcg@10": "nDCG@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "recall@20": "R@20",
    "mrr@10": "RR@10",
}


def retrieval_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Means over every query in qrels; a query the run has no results for counts as 0."""
    try:
        import ir_measures
    except ImportError:
        raise MissingDependencyError("ir-measures", "eval") from None
    measures = {key: ir_measures.parse_measure(name) for key, name in NAMES.items()}
    sums = dict.fromkeys(measures, 0.0)
    for result in ir_measures.iter_calc(list(measures.values()), qrels, run):
        for key, measure in measures.items():
            if result.measure == measure:
                sums[key] += result.value
    # Divide by every judged query, not only those the library saw in the run.
    return {key: total / len(qrels) if qrels else 0.0 for key, total in sums.items()}
