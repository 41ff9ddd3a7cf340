"""Which parts of MiniLM can run in int8: onnxruntime dynamic-quantization variants of the
packaged embedder against torch fp32, in one run.

    KBQA_HOME=/tmp/kbqa-bench python benchmarks/quantization.py [--rounds 3]

Variants, all derived from the dequantized ONNX file the onnx-int8 backend runs (fp32 weights):
- onnx fp32: that file as it is (the onnx-int8 backend);
- qint8: today's onnx-qint8 (every weight MatMul and the embedding tables in int8);
- qint8, MatMul only: the embedding tables stay fp32;
- qint8, FFN down in fp32: also the second feed-forward product, whose input (after GELU) has
  the widest range, stays fp32.
Throughput is on the handbook's chunks at batch 8 (rounds alternate the variants, the best
round counts, the median is printed beside it) as a ratio to torch fp32 at batch 32; quality is
dense nDCG@10 on python-faq's whole test corpus (`kbqa eval prepare python-faq` first), one
vector per document and exact cosine ranking, which isolates the embedder from chunking and
fusion (benchmarks/embedders.py measures the knowledge-base path).
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

from kbqa.evals.datasets import load_beir
from kbqa.evals.metrics import retrieval_metrics
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


def onnx_variant(path: Path, cache: Path) -> Embedder:
    import onnxruntime

    embedder = OnnxEmbedder("onnx-int8", cache, batch_size=8)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    embedder.session = onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )
    return embedder


def dense_ndcg(embedder: Embedder, home: Path) -> tuple[float, float]:
    """(nDCG@10, documents/s) on python-faq test, the whole corpus, exact cosine."""
    data = load_beir(home / "datasets" / "python-faq")
    qrels = data.qrels["test"]
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
    return retrieval_metrics(qrels, run)["ndcg@10"], rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.load()
    cache = Path(settings.model_cache).expanduser()
    OnnxEmbedder("onnx-qint8", cache)  # derives the folded and qint8 files once
    folded = next(cache.glob("all-MiniLM-L6-v2-*-folded.onnx"))
    todays = next(cache.glob("all-MiniLM-L6-v2-*-qint8.onnx"))
    work = settings.home / "quantization"
    work.mkdir(parents=True, exist_ok=True)
    variants = {
        "onnx fp32 (onnx-int8)": folded,
        "qint8 (onnx-qint8)": todays,
        "qint8, MatMul only": quantized(folded, work / "matmul.onnx", True, False),
        "qint8, FFN down in fp32": quantized(folded, work / "keep-down.onnx", True, True),
    }
    embedders: dict[str, Embedder] = {
        BASE: SentenceTransformerEmbedder(PACKAGED_EMBEDDER, "cpu", 32, "fp32")
    }
    embedders |= {name: onnx_variant(path, cache) for name, path in variants.items()}
    texts = handbook_texts()
    seconds: dict[str, list[float]] = {name: [] for name in embedders}
    vectors = {}
    for round_ in range(args.rounds):
        for name, embedder in embedders.items():
            embedder.embed(["warm up"])
            started = time.perf_counter()
            vectors[name] = embedder.embed(texts)
            seconds[name].append(time.perf_counter() - started)
            print(f"round {round_ + 1} {name}: {len(texts) / seconds[name][-1]:.1f} chunks/s")
    embedders[BASE].batch_size = 8  # the settings' default, for the long python-faq documents
    print(
        "\n| variant | chunks/s | × torch fp32 bs32 (best round) | (median) | min cosine to "
        "fp32 | python-faq docs/s | nDCG@10 dense | Δ points |\n|---|---|---|---|---|---|---|---|"
    )
    base_ndcg = None
    for name, embedder in embedders.items():
        ndcg, rate = dense_ndcg(embedder, settings.home)
        base_ndcg = base_ndcg if base_ndcg is not None else ndcg
        best = min(seconds[BASE]) / min(seconds[name])
        median = statistics.median(seconds[BASE]) / statistics.median(seconds[name])
        cosine = float((vectors[name] * vectors[BASE]).sum(axis=1).min())
        print(
            f"| {name} | {len(texts) / min(seconds[name]):.1f} | {best:.2f} | {median:.2f} | "
            f"{cosine:.3f} | {rate:.1f} | {ndcg:.3f} | {100 * (ndcg - base_ndcg):+.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
