"""Ingest throughput (by stage) and query latency, each beside a raw baseline from the same run.

    python benchmarks/ingest_and_query.py [--copies N]

Baselines: the same chunk texts encoded by sentence-transformers directly (what kbqa's embed
stage could at best be), and the same query embedded and searched on a bare FAISS index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import faiss
import numpy as np

from kbqa.app import KnowledgeBase
from kbqa.ingest.pipeline import embedding_text
from kbqa.retrieval.embedder import SentenceTransformerEmbedder
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".txt", ".html"}


def embedded_texts(kb: KnowledgeBase) -> list[str]:
    """The distinct texts the ingest embedded: each chunk with its title and headings."""
    with kb.store.session() as s:
        rows = s.execute(
            ChunkRow.__table__.select()
            .with_only_columns(DocumentRow.title, ChunkRow.heading, ChunkRow.text)
            .join(DocumentRow.__table__)
        ).all()
    return list(dict.fromkeys(embedding_text(t, h, x) for t, h, x in rows))


def make_corpus(target: Path, copies: int) -> None:
    """The handbook, `copies` times; text files get a unique line so they embed afresh."""
    for i in range(copies):
        dest = shutil.copytree(ROOT / "examples/handbook", target / f"copy-{i}")
        for path in dest.rglob("*"):
            if path.suffix in TEXT_SUFFIXES and i:
                path.write_text(path.read_text() + f"\n\nRevision note {i} for {path.stem}.\n")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    qa = json.loads((ROOT / "tests/data/handbook_qa.json").read_text())
    questions = [q["question"] for q in qa["answerable"] + qa["unanswerable"]]

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(corpus, args.copies)
        kb = KnowledgeBase(Settings.load(home=Path(tmp) / "home"))
        kb.embedder.embed(["warm up"])
        report = kb.ingest([corpus])
        n = report.chunks
        print(
            f"## Ingest: {report.added} files, {n} chunks ({report.embedded} embedded, "
            f"{n - report.embedded} reused), {len(report.failed)} failed"
        )
        print(f"total {report.seconds:.1f} s = {n / report.seconds:.1f} chunks/s")
        for stage, seconds in report.stages.items():
            print(f"  {stage:6} {seconds:7.2f} s  {100 * seconds / report.seconds:5.1f}%")

        texts = embedded_texts(kb)
        # The raw baseline is sentence-transformers in fp32, whatever backend kbqa runs.
        model = SentenceTransformerEmbedder().model
        started = time.perf_counter()
        model.encode(texts, batch_size=kb.settings.embed_batch_size, normalize_embeddings=True)
        raw = time.perf_counter() - started
        ours = report.stages["embed"] / max(report.embedded, 1) * len(texts)
        print(
            f"baseline: sentence-transformers encodes the same {len(texts)} texts in {raw:.2f} s "
            f"({len(texts) / raw:.1f} chunks/s); kbqa's embed stage / raw = {ours / raw:.2f}; "
            f"whole ingest / raw embedding = {report.seconds / raw:.2f}"
        )

        # Query latency: kbqa's retriever against a bare FAISS index over the same vectors.
        ids, vectors = kb.store.embeddings()
        bare = faiss.IndexFlatIP(vectors.shape[1])
        bare.add(vectors)
        asked = (questions * (args.queries // len(questions) + 1))[: args.queries]
        ours_ms, raw_ms = [], []
        for q in asked:
            t = time.perf_counter()
            kb.retriever.search(q, 4)
            ours_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            bare.search(model.encode([q], normalize_embeddings=True), 4)
            raw_ms.append((time.perf_counter() - t) * 1000)
        print(f"\n## Retrieval over {len(ids)} chunks, {len(asked)} queries")
        print(f"kbqa retriever  p50 {pct(ours_ms, 50):6.1f} ms  p95 {pct(ours_ms, 95):6.1f} ms")
        print(
            f"bare FAISS      p50 {pct(raw_ms, 50):6.1f} ms  p95 {pct(raw_ms, 95):6.1f} ms  "
            f"(ratio p50 {statistics.median(ours_ms) / statistics.median(raw_ms):.2f})"
        )

        print("\n## Full answers (the generator is loaded before timing)")
        kb.generator  # noqa: B018 (load it outside the timings)
        for label, extractive in (("extractive", True), ("generate", False)):
            totals = []
            for q in questions:
                t = time.perf_counter()
                kb.ask(q, extractive=extractive)
                totals.append((time.perf_counter() - t) * 1000)
            ratio = statistics.median(totals) / statistics.median(raw_ms)
            print(
                f"{label:10} p50 {pct(totals, 50):7.0f} ms  p95 {pct(totals, 95):7.0f} ms  "
                f"(p50 / bare retrieval p50 = {ratio:.0f}x)"
            )


if __name__ == "__main__":
    main()
