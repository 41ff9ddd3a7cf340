"""Filtered vector search at 1M chunks: faiss's IDSelectorBatch rebuilt for every query (kbqa
before the per-audience cache) against kbqa's bitmap selector, new and cached, in one run.

    python benchmarks/filtered_search.py --real-vectors V.npy [--n 1000000] [--share 0.5]

V.npy: real MiniLM vectors (e.g. reconstructed from a knowledge base's index.faiss); the rest
of the set is derived from them as in index_scale.py. IVF with kbqa's 1M setting (4000 cells,
160 probes), one thread, k = 10, 20 real queries.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np

from kbqa.retrieval.index import VectorIndex


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real-vectors", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.5, help="share of ids allowed")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    real = np.load(args.real_vectors).astype(np.float32)
    rng = np.random.default_rng(0)
    a, b = real[rng.integers(0, len(real), args.n)], real[rng.integers(0, len(real), args.n)]
    w = rng.uniform(0.3, 0.7, (args.n, 1)).astype(np.float32)
    x = w * a + (1 - w) * b
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dim = x.shape[1]
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, 4000, faiss.METRIC_INNER_PRODUCT)
    ivf.train(x[rng.integers(0, args.n, 160_000)])
    ivf.nprobe = 160
    ids = np.arange(args.n, dtype=np.int64)
    ivf.add_with_ids(x, ids)
    index = VectorIndex(dim)
    index.cpu = ivf
    allowed = np.sort(rng.choice(ids, int(args.share * args.n), replace=False))
    queries = real[:20]

    def timed(search) -> str:
        times = []
        for q in queries:
            started = time.perf_counter()
            search(q[None])
            times.append((time.perf_counter() - started) * 1000)
        return f"p50 {np.percentile(times, 50):6.1f} ms  p95 {np.percentile(times, 95):6.1f} ms"

    def batch(q) -> None:
        selector = faiss.IDSelectorBatch(allowed)
        ivf.search(q, 10, params=faiss.SearchParametersIVF(sel=selector, nprobe=160))

    print(f"{args.n:,} vectors, {len(allowed):,} allowed")
    rows = [
        ("IDSelectorBatch built per query (before)", batch),
        ("bitmap, an audience's first search", lambda q: index.search(q, 10, allowed.copy())),
        ("bitmap, cached (the audience again)", lambda q: index.search(q, 10, allowed)),
        ("unfiltered", lambda q: ivf.search(q, 10)),
    ]
    for label, search in rows:
        print(f"  {label:42} {timed(search)}")


if __name__ == "__main__":
    main()
