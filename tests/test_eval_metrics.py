"""The metric plumbing on hand-made cases with known answers (the library's numbers)."""

import math

import pytest

from kbqa.evals.metrics import retrieval_metrics

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d9": 1}}


def test_known_rankings_give_known_numbers():
    run = {
        "q1": {"d1": 3.0, "d2": 2.0},  # gold at rank 1
        "q2": {"d1": 3.0, "d3": 2.0, "d2": 1.0},  # gold at rank 3
        # q3: no results at all, must count as 0 rather than be skipped
    }
    m = retrieval_metrics(QRELS, run)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 3)


def test_a_perfect_run_scores_one_everywhere():
    run = {"q1": {"d1": 1.0}, "q2": {"d2": 1.0}, "q3": {"d9": 1.0}}
    assert set(retrieval_metrics(QRELS, run).values()) == {1.0}


def test_an_empty_run_scores_zero():
    assert set(retrieval_metrics(QRELS, {}).values()) == {0.0}
