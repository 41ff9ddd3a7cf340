"""The vector index at 100k and 1M chunks: build time, memory, query latency and recall@10
of the index kbqa picks (IVF past vector_index_flat_max) against exact (flat) search.

    KBQA_HOME=/tmp/kbqa-bench python benchmarks/index_scale.py [--real N] [--sizes 100000,1000000]

The vectors: `--real` generated texts (two random sentences of the python-faq corpus and the
handbook each; python-faq must be prepared under KBQA_HOME) embedded for real with the packaged
MiniLM (onnx-qint8, the fastest backend here), cached under KBQA_HOME/index_scale. Embedding
a million texts on 2 cores takes days, so the rest of each set is derived: each further vector
is normalize(w * a + (1 - w) * b) for two random real vectors a, b and w uniform in [0.3, 0.7]
(the embedding-space picture of a chunk that mixes two topics). The queries are `--queries`
real vectors held out of every index. Latency is one query at a time on one thread, k = 10
(flat: 20 queries); the exact neighbours come from one batch search.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

from kbqa.retrieval.index import IndexChoice, VectorIndex, build_faiss_index
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def generated_texts(home: Path, n: int, seed: int = 0) -> list[str]:
    """n texts of two real sentences each (python-faq corpus and the handbook)."""
    sentences: list[str] = []
    with open(home / "datasets" / "python-faq" / "corpus.jsonl") as f:
        for line in f:
            sentences += re.split(r"(?<=[.!?])\s+", json.loads(line)["text"])
    for path in sorted((ROOT / "examples" / "handbook").rglob("*.md")):
        sentences += re.split(r"(?<=[.!?])\s+", path.read_text())
    sentences = [s.strip() for s in sentences if 30 <= len(s.strip()) <= 300]
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, 2)) for _ in range(n)]


def real_vectors(settings: Settings, n: int, given: Path | None) -> np.ndarray:
    if given is not None:
        return np.load(given)[:n]
    cache = settings.home / "index_scale" / f"real-{n}.npy"
    if cache.exists():
        return np.load(cache)
    from kbqa.retrieval.embedder import make_embedder

    texts = generated_texts(settings.home, n)
    embedder = make_embedder(
        "all-MiniLM-L6-v2", "cpu", 64, "onnx-qint8", cache=settings.model_cache
    )
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    print(f"embedded {n} texts in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def derived(real: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """The real vectors, then mixtures of two random real vectors up to n in all."""
    if n <= len(real):
        return real[:n].copy()
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    for start in range(len(real), n, 100_000):
        m = min(100_000, n - start)
        a, b = real[rng.integers(0, len(real), m)], real[rng.integers(0, len(real), m)]
        w = rng.uniform(0.3, 0.7, (m, 1)).astype(np.float32)
        mix = w * a + (1 - w) * b
        out[start : start + m] = mix / np.linalg.norm(mix, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def latencies(index: VectorIndex, queries: np.ndarray, k: int = 10) -> tuple[list, np.ndarray]:
    """One query at a time on one thread, as a server answers concurrent questions (faiss's
    OpenMP threads only wait for each other on a busy machine)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    times, found = [], []
    try:
        for q in queries:
            started = time.perf_counter()
            _, ids = index.search(q[None, :], k)
            times.append((time.perf_counter() - started) * 1000)
            found.append(ids[0])
    finally:
        faiss.omp_set_num_threads(threads)
    return times, np.array(found)


def recall(truth: np.ndarray, found: np.ndarray) -> float:
    return float(
        np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found, strict=True)])
    )


def ivf_pq(vectors, ids, queries, truth, nlist: int, nprobe: int, m: int, tmp: Path) -> dict:
    """IVF-PQ (m bytes a vector), as one would on a GPU past 10M chunks: its recall@10 alone,
    and after re-ranking its top 100 by the exact vectors (which the database keeps)."""
    import faiss

    dim = vectors.shape[1]
    started = time.perf_counter()
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * nlist), False)
    index.train(vectors[np.sort(sample)])
    index.add_with_ids(vectors, ids)
    build = time.perf_counter() - started
    index.nprobe = nprobe
    faiss.write_index(index, str(tmp / "ivfpq.faiss"))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    times, top100 = [], []
    for q in queries:
        t = time.perf_counter()
        top100.append(index.search(q[None, :], 100)[1][0])
        times.append((time.perf_counter() - t) * 1000)
    faiss.omp_set_num_threads(threads)
    top100 = np.array(top100)
    position = {int(i): row for row, i in enumerate(ids)}
    reranked = []
    for q, found in zip(queries, top100, strict=True):
        found = found[found >= 0]
        exact = vectors[[position[int(i)] for i in found]] @ q
        reranked.append(found[np.argsort(-exact)[:10]])
    return {
        "n": len(vectors),
        "index": f"ivf-pq nlist={nlist} m={m} nprobe={nprobe} (top 100)",
        "build_s": build,
        "rss_mb": float("nan"),
        "file_mb": (tmp / "ivfpq.faiss").stat().st_size / 1e6,
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "recall10": recall(truth, top100[:, :10]),
        "recall10_reranked_from_100": recall(truth, reranked),
    }


def measure(
    vectors: np.ndarray, queries: np.ndarray, choice: IndexChoice, tmp: Path, pq: int = 0
) -> list[dict]:
    n, dim = vectors.shape
    ids = np.arange(1, n + 1, dtype=np.int64) * 3  # chunk ids, not positions
    rows = []
    before = rss_mb()
    started = time.perf_counter()
    flat = VectorIndex(dim, choice=IndexChoice("flat"))
    flat.add(ids, vectors)
    build = time.perf_counter() - started
    _, truth = flat.search(queries, 10)  # the exact answer, in one batch
    flat_times, _ = latencies(flat, queries[:20])
    flat.save(tmp / "flat.faiss")
    rows.append(
        {
            "n": n,
            "index": "flat (exact)",
            "build_s": build,
            "rss_mb": rss_mb() - before,
            "file_mb": (tmp / "flat.faiss").stat().st_size / 1e6,
            "p50_ms": float(np.percentile(flat_times, 50)),
            "p95_ms": float(np.percentile(flat_times, 95)),
            "recall10": 1.0,
        }
    )
    del flat
    before = rss_mb()
    started = time.perf_counter()
    index = VectorIndex(dim, choice=choice)
    index.cpu = build_faiss_index(dim, vectors, choice)
    trained = time.perf_counter() - started
    index.add(ids, vectors)
    build = time.perf_counter() - started
    index.save(tmp / "ivf.faiss")
    grown = rss_mb() - before
    nlist = index.cpu.nlist
    default = index.cpu.nprobe
    for nprobe in sorted(
        {max(1, default // 4), max(1, default // 2), default, min(nlist, default * 2)}
    ):
        index.cpu.nprobe = nprobe
        times, found = latencies(index, queries)
        rows.append(
            {
                "n": n,
                "index": f"ivf nlist={nlist} nprobe={nprobe}"
                + (" (default)" if nprobe == default else ""),
                "build_s": build,
                "train_s": trained,
                "rss_mb": grown,
                "file_mb": (tmp / "ivf.faiss").stat().st_size / 1e6,
                "p50_ms": float(np.percentile(times, 50)),
                "p95_ms": float(np.percentile(times, 95)),
                "recall10": recall(truth, found),
            }
        )
    if pq:
        rows.append(ivf_pq(vectors, ids, queries, truth, nlist, default, pq, tmp))
    # Filtered search (the audience filter): half the ids allowed, through an id selector.
    index.cpu.nprobe = default
    # "cold": a new array each time (the selector is built for it, as for an audience's first
    # question on a snapshot); "warm": the same array again (the snapshot caches an audience's
    # allowed ids, the index their selector).
    allowed = ids[::2]
    cold, warm = [], []
    for q in queries[:20]:
        fresh = allowed.copy()
        started = time.perf_counter()
        index.search(q[None, :], 10, allowed=fresh)
        cold.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        index.search(q[None, :], 10, allowed=fresh)
        warm.append((time.perf_counter() - started) * 1000)
    best = next(r for r in rows if r["index"].endswith("(default)"))
    best["filtered_half_p95_ms"] = float(np.percentile(warm, 95))
    best["filtered_half_cold_p95_ms"] = float(np.percentile(cold, 95))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=10000)
    parser.add_argument("--real-vectors", type=Path, help="a .npy of real vectors to use")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pq", type=int, default=48, help="IVF-PQ bytes a vector (0: none)")
    args = parser.parse_args()
    settings = Settings.load()
    # IVF as "auto" builds it past vector_index_flat_max (forced, for sizes below it too).
    choice = IndexChoice("ivf", settings.vector_index_flat_max)
    real = real_vectors(settings, args.real, args.real_vectors)
    queries, base = real[: args.queries], real[args.queries :]
    print(f"{len(real)} real vectors ({len(queries)} held out as queries); cores {os.cpu_count()}")
    tmp = settings.home / "index_scale"
    tmp.mkdir(parents=True, exist_ok=True)
    results = []
    for n in map(int, args.sizes.split(",")):
        vectors = derived(base, n)
        print(
            f"\n{n} vectors ({min(n, len(base))} real, {max(0, n - len(base))} derived)", flush=True
        )
        rows = measure(vectors, queries, choice, tmp, args.pq if n <= 200_000 else 0)
        del vectors
        for row in rows:
            print(json.dumps(row), flush=True)
        results += rows
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"\npeak RSS {peak:.0f} MB\n")
    print("| chunks | index | build s | memory MB | file MB | p50 ms | p95 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['n']:,} | {r['index']} | {r['build_s']:.1f} | {r['rss_mb']:.0f} | "
            f"{r['file_mb']:.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['recall10']:.3f} |"
        )
    for r in results:
        if "recall10_reranked_from_100" in r:
            print(
                f"{r['n']:,}: {r['index']}: recall@10 {r['recall10']:.3f}, "
                f"{r['recall10_reranked_from_100']:.3f} re-ranking its top 100 exactly"
            )
        if "filtered_half_p95_ms" in r:
            print(
                f"{r['n']:,}: filtered search (half the ids allowed) "
                f"p95 {r['filtered_half_p95_ms']:.1f} ms (an audience's first search: "
                f"{r['filtered_half_cold_p95_ms']:.1f} ms)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
