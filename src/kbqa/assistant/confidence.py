"""The answer-or-abstain confidence: a logistic model over retrieval signals, fitted on
halueval-qa's dev split (benchmarks/abstention.py --fit) and shipped as confidence.json.

Signals, all from the retrieved hits and the BM25 index, none from the generator:
- cosine: the best hit's cosine similarity to the question;
- coverage: the rarity-weighted (IDF) share of the question's terms the best hit contains; a
  near miss on the same topic has a high cosine but lacks the question's names;
- best coverage: the same for the hit that covers the most;
- margin: the best cosine minus the second's;
- bm25: log(1 + the best hit's BM25 score), which grows with the rare terms it matches.
The output is a probability that the question is answerable from the hits; `min_confidence`
is the operating point on it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from kbqa.retrieval.lexical import LexicalIndex, lexical_text
from kbqa.types import Hit

FEATURES = ("cosine", "coverage", "best_coverage", "margin", "bm25")
_SHIPPED = Path(__file__).with_name("confidence.json")


def coverages(question: str, hits: list[Hit], lexical: LexicalIndex) -> list[float]:
    """Each hit's IDF-weighted share of the question's terms (its title and headings count)."""
    return [lexical.coverage(question, lexical_text(h.title, h.heading, h.text)) for h in hits]


def signals(question: str, hits: list[Hit], lexical: LexicalIndex) -> np.ndarray:
    """The FEATURES of a question's hits, in order."""
    if not hits:
        return np.zeros(len(FEATURES))
    covered = coverages(question, hits, lexical)
    bm25 = lexical.score(question, np.array([hits[0].chunk_id], dtype=np.int64))
    second = hits[1].score if len(hits) > 1 else 0.0
    return np.array(
        [
            hits[0].score,
            covered[0],
            max(covered),
            hits[0].score - second,
            math.log1p(max(float(bm25[0]), 0.0)),
        ]
    )


@dataclass(frozen=True)
class Logistic:
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def probability(self, x: np.ndarray) -> float:
        z = (np.asarray(x) - self.mean) / self.scale
        return float(1.0 / (1.0 + math.exp(-(float(np.dot(self.weights, z)) + self.bias))))

    def to_json(self) -> dict:
        return {"features": list(FEATURES), **self.__dict__}


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 3000) -> Logistic:
    """Logistic regression by gradient descent on standardised features (L2-regularised)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * w)
        b -= 0.5 * float(np.mean(p - y))
    return Logistic(tuple(w.tolist()), b, tuple(mean.tolist()), tuple(scale.tolist()))


@cache
def shipped() -> Logistic:
    data = json.loads(_SHIPPED.read_text())
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{_SHIPPED}: features {data['features']} are not {FEATURES}")
    return Logistic(tuple(data["weights"]), data["bias"], tuple(data["mean"]), tuple(data["scale"]))
