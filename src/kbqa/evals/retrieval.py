"""`kbqa eval retrieval`: every retriever on one BEIR-layout dataset, side by side."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from kbqa.evals.beir import BeirDataset
from kbqa.evals.metrics import retrieval_metrics
from kbqa.ingest.sources import documents_source
from kbqa.retrieval.retriever import Retriever
from kbqa.types import Chunk, Document

# Each retriever is the knowledge base's own (its settings) with these attributes changed:
# "hybrid" is what the settings make of hybrid retrieval; the two fusions are shown apart.
RETRIEVERS: dict[str, dict[str, Any]] = {
    "bm25": {"mode": "bm25"},
    "dense": {"mode": "dense"},
    "hybrid": {"mode": "hybrid"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid-convex": {"mode": "hybrid", "fusion": "convex"},
}
DEPTH = 20  # recall@20 is the deepest metric reported


@dataclass
class RetrievalReport:
    dataset: str
    split: str
    queries: int
    metrics: dict[str, dict[str, float]]
    seconds: dict[str, float]
    folder: Path


def corpus_source(dataset: BeirDataset, name: str):
    """The corpus as documents of one chunk each, with uri beir:<name>:<doc id>."""
    documents = [
        Document(
            uri=f"beir:{name}:{doc_id}",
            title=title or doc_id,
            content_hash=hashlib.sha256(f"{title}\n{text}".encode()).hexdigest(),
            chunks=(Chunk(text=text, heading=title, position=0),),
            metadata={"kind": "beir", "doc_id": doc_id},
        )
        for doc_id, (title, text) in dataset.corpus.items()
    ]
    return documents_source(f"beir:{name}", "beir", documents, complete=True)


@contextmanager
def configured(retriever: Retriever, changes: dict[str, Any]) -> Iterator[Retriever]:
    """The retriever with some attributes changed for the duration, then put back."""
    saved = {key: getattr(retriever, key) for key in changes}
    for key, value in changes.items():
        setattr(retriever, key, value)
    try:
        yield retriever
    finally:
        for key, value in saved.items():
            setattr(retriever, key, value)


def run_queries(
    retriever: Retriever,
    queries: dict[str, str],
    progress: Callable[[int, int], object] | None = None,
    depth: int = DEPTH,
) -> dict[str, dict[str, float]]:
    """An ir-measures run: query id -> {doc id: score}, the `depth` best documents."""
    run: dict[str, dict[str, float]] = {}
    for n, (qid, text) in enumerate(queries.items()):
        if progress:
            progress(n, len(queries))
        hits = retriever.search(text, depth)
        # Rank, not cosine, is what the ranking metrics must see: score by position.
        run[qid] = {h.metadata["doc_id"]: float(depth - i) for i, h in enumerate(hits)}
    return run


def evaluate_retrieval(
    kb,
    dataset: BeirDataset,
    name: str,
    split: str,
    out: Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> RetrievalReport:
    """Index the corpus in `kb` (incrementally), run every retriever on the split's queries and
    write report.md, metrics.json and recall.png into `out`."""
    kb.index_sources([corpus_source(dataset, name)])
    qrels = dataset.qrels[split]
    queries = {qid: dataset.queries[qid] for qid in qrels}
    retrievers = dict(RETRIEVERS)
    if kb.retriever.reranker is not None:
        # The reranker re-scores what the configured retrieval finds; the other rows go without.
        retrievers["rerank"] = {}
    metrics, seconds = {}, {}
    for label, changes in retrievers.items():
        if label != "rerank":
            changes = {"reranker": None, **changes}
        with configured(kb.retriever, changes) as retriever:
            started = time.perf_counter()
            run = run_queries(retriever, queries, progress and partial(progress, label))
            seconds[label] = time.perf_counter() - started
        metrics[label] = retrieval_metrics(qrels, run)
    out.mkdir(parents=True, exist_ok=True)
    report = RetrievalReport(name, split, len(queries), metrics, seconds, out)
    _write(report)
    return report


def _write(report: RetrievalReport) -> None:
    data = {
        "dataset": report.dataset,
        "split": report.split,
        "queries": report.queries,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "retrievers": report.metrics,
        "seconds": {k: round(v, 1) for k, v in report.seconds.items()},
    }
    (report.folder / "metrics.json").write_text(json.dumps(data, indent=2) + "\n")
    names = ["ndcg@10", "recall@1", "recall@5", "recall@10", "recall@20", "mrr@10"]
    lines = [
        f"# Retrieval on {report.dataset} ({report.split}, {report.queries} queries)",
        "",
        "| retriever | " + " | ".join(names) + " | seconds |",
        "|---" * (len(names) + 2) + "|",
    ]
    for label, values in report.metrics.items():
        cells = " | ".join(f"{values[n]:.3f}" for n in names)
        lines.append(f"| {label} | {cells} | {report.seconds[label]:.1f} |")
    lines += ["", "![recall@k by retriever](recall.png)", ""]
    (report.folder / "report.md").write_text("\n".join(lines))
    _plot(report)


def _plot(report: RetrievalReport) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write a file
    import matplotlib.pyplot as plt

    ks = [1, 5, 10, 20]
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in report.metrics.items():
        ax.plot(ks, [values[f"recall@{k}"] for k in ks], marker="o", label=label)
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_title(f"{report.dataset} ({report.split})")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(report.folder / "recall.png", dpi=100)
    plt.close(fig)
