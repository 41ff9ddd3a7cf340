"""The metrics on hand-made cases with known answers (for retrieval, the library's numbers)."""

import math
from itertools import pairwise

import pytest

from kbqa.evals.metrics import (
    abstention_metrics,
    accuracy_vs_coverage,
    auroc,
    citation_precision_recall,
    exact_match,
    normalize_answer,
    paired_bootstrap,
    per_query_ndcg,
    per_query_recall,
    retrieval_metrics,
    token_f1,
)

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d9": 1}}
RUN = {
    "q1": {"d1": 3.0, "d2": 2.0},  # gold at rank 1
    "q2": {"d1": 3.0, "d3": 2.0, "d2": 1.0},  # gold at rank 3
    # q3: no results at all, must count as 0 rather than be skipped
}


def test_known_rankings_give_known_numbers():
    m = retrieval_metrics(QRELS, RUN)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@5"] == m["recall@10"] == m["recall@20"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 3)


def test_queries_outside_the_qrels_are_ignored():
    run = {**RUN, "unjudged": {"d1": 1.0}}
    assert retrieval_metrics(QRELS, run) == retrieval_metrics(QRELS, RUN)


def test_graded_gains_and_several_relevant_passages():
    qrels = {"q": {"a": 2, "b": 1}}
    ranked = ["b", "x1", "x2", "x3", "x4", "x5", "a"]  # a at rank 7
    run = {"q": {doc: float(len(ranked) - i) for i, doc in enumerate(ranked)}}
    m = retrieval_metrics(qrels, run)
    assert (m["recall@1"], m["recall@5"], m["recall@10"]) == (0.5, 0.5, 1.0)
    assert m["mrr@10"] == 1.0
    # trec_eval's nDCG: the gain is the grade itself, discounted by log2(rank + 1).
    assert m["ndcg@10"] == pytest.approx((1 + 2 / math.log2(8)) / (2 + 1 / math.log2(3)))


def test_per_query_recall_keeps_every_judged_query():
    assert per_query_recall(QRELS, RUN, 1) == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    assert per_query_recall(QRELS, RUN, 3) == {"q1": 1.0, "q2": 1.0, "q3": 0.0}


def test_per_query_ndcg_averages_to_the_mean():
    each = per_query_ndcg(QRELS, RUN)
    assert each == pytest.approx({"q1": 1.0, "q2": 1 / math.log2(4), "q3": 0.0})
    assert sum(each.values()) / 3 == pytest.approx(retrieval_metrics(QRELS, RUN)["ndcg@10"])


def test_paired_bootstrap_interval():
    base = {f"q{i}": i / 100 for i in range(100)}
    assert paired_bootstrap(base, base) == (0.0, 0.0)
    # The same shift on every query: no doubt about the difference, whatever the spread.
    low, high = paired_bootstrap(base, {q: v + 0.02 for q, v in base.items()})
    assert low == pytest.approx(0.02) and high == pytest.approx(0.02)
    # One query in ten gains 0.1: the mean gain is 0.01, and the interval holds it, wide.
    mixed = {q: v + (0.1 if i % 10 == 0 else 0.0) for i, (q, v) in enumerate(base.items())}
    low, high = paired_bootstrap(base, mixed)
    assert 0.0 <= low < 0.01 < high < 0.025


def test_a_perfect_run_scores_one_everywhere():
    run = {"q1": {"d1": 1.0}, "q2": {"d2": 1.0}, "q3": {"d9": 1.0}}
    assert set(retrieval_metrics(QRELS, run).values()) == {1.0}


def test_an_empty_run_scores_zero():
    assert set(retrieval_metrics(QRELS, {}).values()) == {0.0}
    assert set(retrieval_metrics({}, {}).values()) == {0.0}


def test_normalize_answer_like_squad():
    assert normalize_answer("  The Eiffel   Tower! ") == "eiffel tower"
    assert normalize_answer("An apple, a day.") == "apple day"
    assert normalize_answer("theory") == "theory"  # articles only as whole words


def test_exact_match():
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0


def test_token_f1():
    assert token_f1("Denver Broncos", "the Denver Broncos") == 1.0
    # 1 shared token: precision 1/1, recall 1/2
    assert token_f1("Denver", "Denver Broncos") == pytest.approx(2 / 3)
    # 3 shared of 5 predicted and 4 reference tokens (the article goes)
    assert token_f1("in the year 1994 at port", "year 1994 port 8080") == pytest.approx(
        2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4)
    )
    assert token_f1("Paris", "London") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "Paris") == 0.0  # normalises to nothing


def test_repeated_tokens_count_once_each():
    assert token_f1("port port port", "port") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))


def test_citation_precision_recall():
    assert citation_precision_recall(["a", "b"], {"a", "c"}) == (0.5, 0.5)
    assert citation_precision_recall(["a", "a"], {"a"}) == (1.0, 1.0)
    assert citation_precision_recall([], {"a"}) == (0.0, 0.0)
    assert citation_precision_recall([], set()) == (1.0, 1.0)
    assert citation_precision_recall(["a"], set()) == (0.0, 1.0)


def test_auroc():
    labels = [False, False, True, True]
    assert auroc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auroc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auroc(labels, [0.5, 0.5, 0.5, 0.5]) == 0.5
    # one tie across the classes counts half: (3 + 0.5) / 4
    assert auroc(labels, [0.1, 0.5, 0.5, 0.9]) == pytest.approx(3.5 / 4)
    assert math.isnan(auroc([True, True], [0.1, 0.9]))
    assert math.isnan(auroc([], []))
    with pytest.raises(ValueError):
        auroc([True, False], [0.1])


def test_abstention_metrics():
    should = [True, True, False, False]
    assert abstention_metrics(should, [True, False, True, False]) == {
        "precision": 0.5,
        "recall": 0.5,
    }
    assert abstention_metrics(should, [True, True, False, False]) == {
        "precision": 1.0,
        "recall": 1.0,
    }
    assert abstention_metrics(should, [False] * 4) == {"precision": 0.0, "recall": 0.0}
    assert abstention_metrics([False] * 2, [False] * 2) == {"precision": 1.0, "recall": 1.0}


def test_accuracy_vs_coverage():
    correct = [True, False, True, True, False]
    confidence = [0.9, 0.1, 0.5, 0.9, 0.5]
    curve = accuracy_vs_coverage(correct, confidence)
    assert curve == [
        pytest.approx((0.1, 1.0, 3 / 5)),
        pytest.approx((0.5, 4 / 5, 3 / 4)),
        pytest.approx((0.9, 2 / 5, 1.0)),
    ]
    thresholds = [t for t, _, _ in curve]
    shares = [s for _, s, _ in curve]
    assert thresholds == sorted(thresholds)
    assert all(a > b for a, b in pairwise(shares))
    assert accuracy_vs_coverage([], []) == []
