"""Evaluation metrics: retrieval by ir-measures (pytrec_eval underneath), not by hand; answers
by SQuAD's definitions (exact match, token F1); citations, abstention and confidence by theirs."""

from __future__ import annotations

import math
import re
import string
from collections import Counter

import numpy as np
from sklearn.metrics import roc_auc_score

from kbqa.errors import MissingDependencyError

NAMES = {
    "ndcg@10": "nDCG@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "recall@20": "R@20",
    "mrr@10": "RR@10",
}


def _per_query(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], names: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Each measure for every query in qrels, 0 where the run has no results for it."""
    try:
        import ir_measures
    except ImportError:
        raise MissingDependencyError("ir-measures", "eval") from None
    measures = {key: ir_measures.parse_measure(name) for key, name in names.items()}
    keys = {measure: key for key, measure in measures.items()}
    # Filled in up front: pytrec_eval itself skips a query missing from the run (ir-measures 0.4
    # reports it as 0), and a skipped query would inflate the means.
    values = {qid: dict.fromkeys(measures, 0.0) for qid in qrels}
    for result in ir_measures.iter_calc(list(measures.values()), qrels, run):
        if result.query_id in values:
            values[result.query_id][keys[result.measure]] = float(result.value)
    return values


def retrieval_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Means over every query in qrels; a query the run has no results for counts as 0."""
    values = _per_query(qrels, run, NAMES)
    if not values:
        return dict.fromkeys(NAMES, 0.0)
    return {key: sum(v[key] for v in values.values()) / len(values) for key in NAMES}


def per_query_ndcg(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, float]:
    """nDCG@10 of each query in qrels (0 where the run has none), for paired comparisons."""
    return {qid: v["ndcg"] for qid, v in _per_query(qrels, run, {"ndcg": "nDCG@10"}).items()}


def paired_bootstrap(
    base: dict[str, float], other: dict[str, float], rounds: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """The 95 % interval of mean(other - base) over queries resampled with replacement: how far
    a difference of means could move with another sample of the same kind of queries."""
    diffs = np.array([other[q] - base[q] for q in base])
    picks = np.random.default_rng(seed).integers(0, len(diffs), (rounds, len(diffs)))
    means = diffs[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def per_query_recall(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], k: int
) -> dict[str, float]:
    """Recall@k of each query in qrels (0 where the run has none), for plots."""
    values = _per_query(qrels, run, {"recall": f"R@{k}"})
    return {qid: v["recall"] for qid, v in values.items()}


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised answers are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 over normalised tokens; two empty answers agree (1.0), as in SQuAD 2.0."""
    predicted = normalize_answer(prediction).split()
    wanted = normalize_answer(reference).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def citation_precision_recall(cited: list[str], gold: set[str]) -> tuple[float, float]:
    """(share of distinct cited passages that are gold, share of gold passages cited).

    Citing nothing has precision 1.0 when there is no gold (nothing was owed) and 0.0 when there
    is; with no gold, recall is 1.0 (nothing was missed)."""
    distinct = set(cited)
    hits = len(distinct & gold)
    precision = hits / len(distinct) if distinct else (0.0 if gold else 1.0)
    recall = hits / len(gold) if gold else 1.0
    return precision, recall


def auroc(labels: list[bool], scores: list[float]) -> float:
    """Area under the ROC curve of scores for telling True from False; nan with one class."""
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    if len(set(labels)) < 2:
        return math.nan
    return float(roc_auc_score([bool(x) for x in labels], scores))


def abstention_metrics(should_abstain: list[bool], abstained: list[bool]) -> dict[str, float]:
    """Precision and recall of abstaining; never abstaining has precision 1.0 only when nothing
    should have been, and with nothing to abstain on recall is 1.0."""
    if len(should_abstain) != len(abstained):
        raise ValueError(f"{len(should_abstain)} labels but {len(abstained)} decisions")
    both = sum(s and a for s, a in zip(should_abstain, abstained, strict=True))
    wanted, made = sum(map(bool, should_abstain)), sum(map(bool, abstained))
    precision = both / made if made else (0.0 if wanted else 1.0)
    recall = both / wanted if wanted else 1.0
    return {"precision": precision, "recall": recall}


def accuracy_vs_coverage(
    correct: list[bool], confidence: list[float]
) -> list[tuple[float, float, float]]:
    """(threshold, share answered, accuracy among answered) for each distinct confidence,
    answering when confidence >= threshold; thresholds ascending, so the share falls."""
    if len(correct) != len(confidence):
        raise ValueError(f"{len(correct)} labels but {len(confidence)} confidences")
    pairs = sorted(zip(confidence, correct, strict=True), key=lambda p: p[0], reverse=True)
    points, right = [], 0
    for i, (score, ok) in enumerate(pairs):
        right += bool(ok)
        # Record only once the last item at this confidence is in: ties are answered together.
        if i + 1 == len(pairs) or pairs[i + 1][0] != score:
            points.append((float(score), (i + 1) / len(pairs), right / (i + 1)))
    return points[::-1]
