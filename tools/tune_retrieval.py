"""Sweep the lexical and fusion settings of hybrid retrieval on a dataset's dev split and print
a table (nDCG@10, recall@k, MRR@10), best nDCG@10 first.

The corpus must be indexed already, by `kbqa eval retrieval DATASET --split dev` with the same
KBQA_HOME: this script never embeds the corpus, and embeds each query once. Tune on dev only;
read test once, with `kbqa eval retrieval DATASET --split test`, for the settings chosen here.

    KBQA_HOME=/tmp/kbqa-retr python tools/tune_retrieval.py [python-faq] [--split dev]
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import cache

import numpy as np

from kbqa.app import KnowledgeBase
from kbqa.evals.beir import load_beir
from kbqa.evals.metrics import retrieval_metrics
from kbqa.evals.retrieval import configured, run_queries
from kbqa.retrieval.lexical import LexicalIndex
from kbqa.settings import Settings

COLUMNS = ["ndcg@10", "recall@1", "recall@5", "recall@10", "recall@20", "mrr@10"]
STEMMERS = ["", "english"]
RRF_K = [20, 60]
RRF_ALPHAS = [0.5, 0.7, 0.8]
ALPHAS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


class CachedEmbedder:
    """The knowledge base's embedder, remembering each query's vector across the sweep."""

    def __init__(self, embedder):
        self.inner, self.name, self.dim = embedder, embedder.name, embedder.dim
        self._one = cache(lambda text: embedder.embed([text]))

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self._one(t) for t in texts])


def grid() -> list[tuple[str, dict]]:
    """(label, retriever attributes) for each setting tried."""
    rows: list[tuple[str, dict]] = [("dense", {"mode": "dense"})]
    for stemmer in STEMMERS:
        tag = f"stem={stemmer or 'none'}"
        hybrid = {"mode": "hybrid", "stemmer": stemmer}
        rows.append((f"bm25 {tag}", {"mode": "bm25", "stemmer": stemmer}))
        for k in RRF_K:
            for alpha in RRF_ALPHAS:
                options = {**hybrid, "fusion": "rrf", "rrf_k": k, "alpha": alpha}
                rows.append((f"rrf k={k} a={alpha} {tag}", options))
        for alpha in ALPHAS:
            options = {**hybrid, "fusion": "convex", "alpha": alpha}
            rows.append((f"convex a={alpha} {tag}", options))
        for alpha in ALPHAS:
            options = {**hybrid, "fusion": "zscore", "alpha": alpha}
            rows.append((f"zscore a={alpha} {tag}", options))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="python-faq")
    parser.add_argument("--split", default="dev")
    args = parser.parse_args()
    if args.split == "test":
        print("tune on dev; test is for the one final measurement", file=sys.stderr)
        return 2
    settings = Settings.load()
    data = load_beir(settings.home / "datasets" / args.dataset)
    kb = KnowledgeBase(settings.replace(home=settings.home / "evals" / args.dataset))
    if kb.store.counts()["chunks"] < len(data.corpus):
        print(f"index {args.dataset} first: kbqa eval retrieval {args.dataset} --split dev")
        return 1
    qrels = data.qrels[args.split]
    queries = {q: data.queries[q] for q in qrels}
    retriever = kb.retriever
    retriever.embedder, retriever.reranker = CachedEmbedder(kb.embedder), None
    lexical = {s: LexicalIndex(kb.store, s) for s in STEMMERS}
    results = []
    for label, changes in grid():
        changes = dict(changes)
        changes["lexical"] = lexical[changes.pop("stemmer", "english")]
        started = time.perf_counter()
        with configured(retriever, changes):
            run = run_queries(retriever, queries)
        results.append((label, retrieval_metrics(qrels, run), time.perf_counter() - started))
        # The sweep takes minutes: show each setting as it is done.
        print(f"{label}: nDCG@10 {results[-1][1]['ndcg@10']:.3f}", file=sys.stderr, flush=True)
    print(f"{args.dataset} {args.split}: {len(queries)} queries\n")
    print("| setting | " + " | ".join(COLUMNS) + " | s |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for label, values, seconds in sorted(results, key=lambda r: -r[1]["ndcg@10"]):
        cells = " | ".join(f"{values[c]:.3f}" for c in COLUMNS)
        print(f"| {label} | {cells} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
