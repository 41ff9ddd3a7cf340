"""Which parts of MiniLM can run in int8: onnxruntime dynamic-quantization variants of the
packaged embedder against torch fp32, in one run.

    KBQA_HOME=/tmp/kbqa-bench python benchmarks/quantization.py [--rounds 3]

Variants, all derived from the dequantized ONNX file the onnx-int8 backend runs (fp32 weights):
- onnx fp32: that file as it is (the onnx-int8 backend);
- qint8: the onnx-qint8 backend (every weight MatMul and the embedding tables in int8), which
  runs one text at a time; "qint8 bs8" is the same file at batch 8, where the activation
  scales span the batch and a text's vector moves with its neighbours;
- qint8, MatMul only: the embedding tables stay fp32;
- qint8, FFN down in fp32: also the second feed-forward product, whose input (after GELU) has
  the widest range, stays fp32.
Throughput is on the handbook's chunks at batch 8 unless named (rounds alternate the variants,
the best round counts, the median is printed beside it) as a ratio to torch fp32 at batch 32;
quality is dense nDCG@10 on python-faq's whole test corpus (`kbqa eval prepare python-faq`
first), one vector per document and exact cosine ranking, which isolates the embedder from
chunking and fusion (benchmarks/embedders.py measures the knowledge-base path), with the 95 %
interval of its difference to fp32 from a paired bootstrap over the test queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
from embedders import handbook_texts  # benchmarks/, on the path as the script's folder

from kbqa.errors import KbqaError
from kbqa.evals.beir import load_beir
from kbqa.evals.metrics import paired_bootstrap, per_query_ndcg
from kbqa.ingest.pipeline import embedding_text
from kbqa.retrieval.embedder import Embedder, OnnxEmbedder, SentenceTransformerEmbedder
from kbqa.settings import PACKAGED_EMBEDDER, Settings

BASE = "torch fp32 bs32"


def ffn_down_products(path: Path) -> list[str]:
    """Names of the MatMuls that read a GELU's output: the feed-forward down projections."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    weights = {init.name for init in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and node.input[1] in weights
        and getattr(producer.get(node.input[0]), "op_type", "") in ("Mul", "Gelu", "BiasGelu")
    ]


def quantized(folded: Path, out: Path, matmul_only: bool, keep_down: bool) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not out.exists():
        quantize_dynamic(
            str(folded),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"] if matmul_only else None,
            nodes_to_exclude=ffn_down_products(folded) if keep_down else None,
        )
    return out


def onnx_variant(path: Path, cache: Path, batch_size: int) -> Embedder:
    import onnxruntime

    embedder = OnnxEmbedder("onnx-int8", cache, batch_size=batch_size)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    embedder.session = onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )
    return embedder


def dense_ndcg(
    embedder: Embedder, folder: Path, splits: list[str]
) -> tuple[dict[str, float], float]:
    """(nDCG@10 of each query, documents/s) on a BEIR dataset's whole corpus, exact cosine,
    over the queries of `splits` (their qrels merged)."""
    data = load_beir(folder)
    qrels = {q: rels for split in splits for q, rels in data.qrels[split].items()}
    docs = sorted(data.corpus)
    texts = [embedding_text(data.corpus[d][0] or d, *data.corpus[d]) for d in docs]
    started = time.perf_counter()
    corpus = embedder.embed(texts)
    rate = len(texts) / (time.perf_counter() - started)
    queries = {q: data.queries[q] for q in qrels}
    top = np.argsort(-(embedder.embed(list(queries.values())) @ corpus.T), axis=1)[:, :100]
    run = {
        q: {docs[j]: float(100 - i) for i, j in enumerate(row)}
        for q, row in zip(queries, top, strict=True)
    }
    return per_query_ndcg(qrels, run), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", default="", help="the variants to run, by name, separated by ';' (default: all)"
    )
    parser.add_argument(
        "--dataset",
        default="python-faq",
        help="a prepared dataset under KBQA_HOME/datasets for the nDCG (default: python-faq)",
    )
    parser.add_argument("--splits", default="test", help="whose queries, e.g. train,dev,test")
    parser.add_argument("--skip-rounds", action="store_true", help="nDCG only")
    args = parser.parse_args()
    settings = Settings.load()
    # Checked before the minutes of timing rounds, not after them.
    try:
        have = load_beir(settings.home / "datasets" / args.dataset).qrels
    except KbqaError as e:
        raise SystemExit(f"--dataset: {e}") from None
    if missing := [split for split in args.splits.split(",") if split not in have]:
        splits = ", ".join(have)
        raise SystemExit(f"--splits: {args.dataset} has no split {missing[0]!r} ({splits})")
    cache = Path(settings.model_cache).expanduser()
    OnnxEmbedder("onnx-qint8", cache)  # derives the folded and qint8 files once
    folded = next(cache.glob("all-MiniLM-L6-v2-*-folded.onnx"))
    todays = next(cache.glob("all-MiniLM-L6-v2-*-qint8.onnx"))
    work = settings.home / "quantization"
    work.mkdir(parents=True, exist_ok=True)
    variants = {  # name -> (model file, batch size)
        "onnx fp32 (onnx-int8)": (folded, 8),
        "qint8 (onnx-qint8, one text a run)": (todays, 1),
        "qint8 bs8": (todays, 8),
        "qint8, MatMul only": (quantized(folded, work / "matmul.onnx", True, False), 8),
        "qint8, FFN down in fp32": (quantized(folded, work / "keep-down.onnx", True, True), 8),
        "qint8, FFN down in fp32, one text a run": (work / "keep-down.onnx", 1),
    }
    if args.only:
        unknown = [name for name in args.only.split(";") if name not in variants]
        if unknown:
            raise SystemExit(f"--only: no variant {unknown[0]!r} (variants: {'; '.join(variants)})")
        variants = {name: variants[name] for name in args.only.split(";")}
    embedders: dict[str, Embedder] = {
        BASE: SentenceTransformerEmbedder(PACKAGED_EMBEDDER, "cpu", 32, "fp32")
    }
    embedders |= {name: onnx_variant(path, cache, n) for name, (path, n) in variants.items()}
    texts = handbook_texts()
    seconds: dict[str, list[float]] = {name: [] for name in embedders}
    vectors = {}
    for round_ in range(0 if args.skip_rounds else args.rounds):
        for name, embedder in embedders.items():
            embedder.embed(["warm up"])
            started = time.perf_counter()
            vectors[name] = embedder.embed(texts)
            seconds[name].append(time.perf_counter() - started)
            print(f"round {round_ + 1} {name}: {len(texts) / seconds[name][-1]:.1f} chunks/s")
    embedders[BASE].batch_size = 8  # the settings' default, for the long python-faq documents
    print(
        "\n| variant | chunks/s | × torch fp32 bs32 (best round) | (median) | min cosine to "
        f"fp32 | {args.dataset} docs/s | nDCG@10 dense | Δ points | Δ, 95 % interval |"
        "\n|---|---|---|---|---|---|---|---|---|"
    )
    base = None
    for name, embedder in embedders.items():
        each, rate = dense_ndcg(
            embedder, settings.home / "datasets" / args.dataset, args.splits.split(",")
        )
        base = base or each
        ndcg = statistics.mean(each.values())
        delta = 100 * (ndcg - statistics.mean(base.values()))
        low, high = (100 * x for x in paired_bootstrap(base, each))
        speed = "| – | – | – | – "  # --skip-rounds
        if seconds[name]:
            best = min(seconds[BASE]) / min(seconds[name])
            median = statistics.median(seconds[BASE]) / statistics.median(seconds[name])
            cosine = float((vectors[name] * vectors[BASE]).sum(axis=1).min())
            speed = f"| {len(texts) / min(seconds[name]):.1f} | {best:.2f} | {median:.2f} | "
            speed += f"{cosine:.3f} "
        print(
            f"| {name} {speed}| {rate:.1f} | {ndcg:.3f} | {delta:+.1f} | "
            f"{low:+.1f} to {high:+.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
