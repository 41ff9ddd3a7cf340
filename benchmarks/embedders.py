"""Every embedding backend in one run: throughput on the handbook's chunks, cosine to the fp32
vectors, and nDCG@10 on python-faq test (dense and hybrid), each as a ratio to torch-fp32.

    KBQA_HOME=/tmp/kbqa-bench python benchmarks/embedders.py [--rounds 3] [--bf16-texts 8]

python-faq must be prepared under KBQA_HOME first (`kbqa eval prepare python-faq`); each
backend indexes it in a knowledge base of its own under KBQA_HOME/embedders/<backend>. Rounds
alternate the backends, so a busy (shared) machine slows each alike; the best round counts.
torch-bf16 is timed once on only --bf16-texts texts where the CPU lacks bf16 units (it is ~250x
slower than fp32 there), and gets no nDCG then (--bf16-full forces it).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from ingest_and_query import embedded_texts  # benchmarks/, on the path as the script's folder

from kbqa.app import KnowledgeBase
from kbqa.evals.beir import load_beir
from kbqa.evals.retrieval import evaluate_retrieval
from kbqa.ingest.pipeline import embedding_text
from kbqa.retrieval.device import cpu_has_bf16
from kbqa.retrieval.embedder import HashEmbedder, make_embedder
from kbqa.settings import PACKAGED_EMBEDDER, Settings

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["torch-fp32", "torch-bf16", "onnx-int8", "onnx-qint8"]


def handbook_texts() -> list[str]:
    """What the ingest embeds for the handbook: its chunks with titles and headings."""
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(Settings(home=Path(tmp)), embedder=HashEmbedder())
        kb.ingest([ROOT / "examples" / "handbook"])
        return embedded_texts(kb)


def dense_subset_ndcg(settings, embedders, backends, slow_bf16, others, results) -> None:
    """Dense nDCG@10 on python-faq test over a sub-corpus (every document judged for a test
    query, plus `others` random ones, the same for every backend), exact cosine ranking: what
    the backend changes, in minutes instead of an hour per backend on a busy 2-core machine."""
    import random

    from kbqa.evals.metrics import retrieval_metrics
    from kbqa.evals.retrieval import DEPTH

    data = load_beir(settings.home / "datasets" / "python-faq")
    qrels = data.qrels["test"]
    judged = sorted({doc for rels in qrels.values() for doc in rels})
    rest = sorted(set(data.corpus) - set(judged))
    docs = judged + random.Random(0).sample(rest, min(others, len(rest)))
    texts = [embedding_text(data.corpus[d][0] or d, *data.corpus[d]) for d in docs]
    queries = {q: data.queries[q] for q in qrels}
    print(f"python-faq test sub-corpus: {len(docs)} documents ({len(judged)} judged)", flush=True)
    for backend in backends:
        if backend == "torch-bf16" and slow_bf16:
            continue
        started = time.perf_counter()
        corpus = embedders[backend].embed(texts)
        spent = time.perf_counter() - started
        asked = embedders[backend].embed(list(queries.values()))
        top = np.argsort(-(asked @ corpus.T), axis=1)[:, :DEPTH]
        run = {
            q: {docs[j]: float(DEPTH - i) for i, j in enumerate(row)}
            for q, row in zip(queries, top, strict=True)
        }
        results[backend]["ndcg10_dense"] = retrieval_metrics(qrels, run)["ndcg@10"]
        results[backend]["faq_ingest_chunks_per_s"] = len(texts) / spent
        print(f"{backend}: {len(texts)} documents at {len(texts) / spent:.2f}/s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bf16-texts", type=int, default=4)
    parser.add_argument("--bf16-full", action="store_true")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--batch-sizes",
        default="",
        help="time each backend at these batch sizes too (e.g. 32,8); the first row of "
        "torch-fp32 stays the base (default: the settings' embed_batch_size only)",
    )
    parser.add_argument("--skip-ndcg", action="store_true")
    parser.add_argument(
        "--faq-subset",
        type=int,
        default=0,
        help="dense nDCG over the judged documents plus this many others (0: the whole corpus)",
    )
    args = parser.parse_args()
    settings = Settings.load()
    backends = args.backends.split(",")
    sizes = [int(b) for b in args.batch_sizes.split(",") if b] or [settings.embed_batch_size]
    slow_bf16 = not cpu_has_bf16() and not args.bf16_full

    texts = handbook_texts()
    chars = np.mean([len(t) for t in texts])
    print(f"handbook: {len(texts)} chunks, {chars:.0f} characters on average")
    print(f"CPU has bf16 units: {cpu_has_bf16()}; cores: {os.cpu_count()}; batch sizes {sizes}")
    embedders = {}
    for backend in backends:
        started = time.perf_counter()
        embedders[backend] = make_embedder(
            PACKAGED_EMBEDDER, "cpu", sizes[-1], backend, cache=settings.model_cache
        )
        embedders[backend].embed(["warm up"])
        print(f"{backend}: loaded in {time.perf_counter() - started:.1f} s")

    # A row is a backend at a batch size; "name" alone when one batch size is timed.
    rows = [(b, n) for b in backends for n in sizes]
    label = {(b, n): b if len(sizes) == 1 else f"{b} bs{n}" for b, n in rows}
    seconds: dict[tuple, list[float]] = {r: [] for r in rows}
    counts = {
        r: args.bf16_texts if r[0] == "torch-bf16" and slow_bf16 else len(texts) for r in rows
    }
    vectors = {}
    subset_fp32: dict[tuple, float] = {}  # row timed on a subset -> fp32's best on it
    for round_ in range(args.rounds):
        for row in rows:
            backend, size = row
            if backend == "torch-bf16" and slow_bf16 and round_:
                continue  # minutes a round: one is enough to show it
            embedders[backend].batch_size = size
            part = texts[: counts[row]]
            started = time.perf_counter()
            vectors[row] = embedders[backend].embed(part)
            seconds[row].append(time.perf_counter() - started)
            rate = len(part) / seconds[row][-1]
            print(
                f"round {round_ + 1} {label[row]}: {len(part)} texts, {rate:.2f} chunks/s",
                flush=True,
            )
            if counts[row] < len(texts) and "torch-fp32" in embedders:
                # fp32 on the same few texts, right after, for a fair ratio.
                embedders["torch-fp32"].batch_size = size
                started = time.perf_counter()
                embedders["torch-fp32"].embed(part)
                same = time.perf_counter() - started
                subset_fp32[row] = min(subset_fp32.get(row, same), same)
                print(f"  torch-fp32 on the same {len(part)}: {len(part) / same:.2f} chunks/s")
    for backend in backends:
        embedders[backend].batch_size = sizes[-1]  # the nDCG runs use the last batch size

    rates = {r: counts[r] / min(seconds[r]) for r in rows}
    base = rates.get(("torch-fp32", sizes[0]))
    reference = vectors.get(("torch-fp32", sizes[0]))
    results: dict[str, dict] = {}
    for row in rows:
        n = counts[row]
        cosine = (
            float((vectors[row] * reference[:n]).sum(axis=1).min())
            if reference is not None
            else float("nan")
        )
        ratio = rates[row] / base if base else float("nan")
        if row in subset_fp32:
            ratio = subset_fp32[row] / min(seconds[row])
        results[label[row]] = {
            "chunks_per_s": rates[row],
            "x_fp32": ratio,
            "min_cosine_to_fp32": cosine,
            "texts_timed": n,
        }
    # nDCG is measured once per backend (at the last batch size) and shown on its rows.
    by_backend = {b: results[label[(b, sizes[-1])]] for b in backends}

    if args.faq_subset:
        dense_subset_ndcg(settings, embedders, backends, slow_bf16, args.faq_subset, by_backend)
    elif not args.skip_ndcg:
        data = load_beir(settings.home / "datasets" / "python-faq")
        for backend in backends:
            if backend == "torch-bf16" and slow_bf16:
                continue
            kb = KnowledgeBase(
                settings.replace(
                    home=settings.home / "embedders" / backend, embedding_backend=backend
                ),
                embedder=embedders[backend],
            )
            started = time.perf_counter()
            report = evaluate_retrieval(
                kb, data, "python-faq", "test", settings.home / "embedders" / f"{backend}-report"
            )
            run = kb.store.last_run()
            stats = run.stats or {} if run else {}
            if stats.get("embedded"):
                by_backend[backend]["faq_ingest_chunks_per_s"] = (
                    stats["embedded"] / stats["stages"]["embed"]
                )
            for mode in ("dense", "hybrid"):
                by_backend[backend][f"ndcg10_{mode}"] = report.metrics[mode]["ndcg@10"]
            print(
                f"{backend}: python-faq test in {time.perf_counter() - started:.0f} s", flush=True
            )

    print("\n| backend | chunks/s | x fp32 | min cosine to fp32 | nDCG@10 dense | hybrid |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        backend = name.split(" ")[0]
        r = {**by_backend[backend], **r}
        cells = [
            f"{r['chunks_per_s']:.2f}"
            + (f" ({r['texts_timed']} texts)" if r["texts_timed"] < len(texts) else ""),
            f"{r['x_fp32']:.2f}",
            f"{r['min_cosine_to_fp32']:.4f}",
        ]
        for mode in ("dense", "hybrid"):
            value = r.get(f"ndcg10_{mode}")
            delta = (
                f" ({100 * (value - by_backend['torch-fp32'][f'ndcg10_{mode}']):+.1f})"
                if value is not None
                and "torch-fp32" in by_backend
                and f"ndcg10_{mode}" in by_backend["torch-fp32"]
                else ""
            )
            cells.append("—" if value is None else f"{value:.3f}{delta}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
