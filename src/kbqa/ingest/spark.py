"""Big ingests as a Spark job (`kbqa ingest --spark MASTER PATH…`, extra `[spark]`).

The executors do the expensive stages: each task hashes its files, skips those whose content
hash the database already has, parses and chunks the rest, and embeds the chunks whose text
was never embedded (one embedder per Python worker, reused across tasks). The driver then hands
the results to the same `Indexer` the local ingest uses, as items that are already loaded and an
embedder that only looks vectors up, so the database writes, the incrementality and the
per-file failure report are the local ingest's own. Files must be readable at the same paths on
the executors (local[N], or a shared filesystem on a cluster).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from kbqa.errors import KbqaError, MissingDependencyError, ParseError
from kbqa.ingest.files import content_hash, parse_file
from kbqa.ingest.pipeline import Embedder, embedding_text, text_hash
from kbqa.ingest.sources import Item, Source
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Document

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder]

# Per Python worker: the embedder is loaded by the first task and reused by the next ones.
_WORKER_EMBEDDERS: dict[str, Embedder] = {}


@dataclass
class SparkResult:
    """What the job produced: sources of loaded items, the vectors, and its timings."""

    sources: list[Source]
    embedder: Embedder
    stages: dict[str, float] = field(default_factory=dict)
    tasks: int = 0


class PrecomputedEmbedder:
    """The Indexer's embedder for a Spark ingest: the executors' vectors, by text hash. A text
    the job did not embed (a stored vector deleted meanwhile) is embedded here."""

    def __init__(self, vectors: dict[str, np.ndarray], local: Embedder):
        self.vectors, self.local = vectors, local
        self.name, self.dim = local.name, local.dim
        self.embedded_here = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = []
        for n, text in enumerate(texts):
            vector = self.vectors.get(text_hash(text))
            if vector is None:
                missing.append(n)
            else:
                out[n] = vector
        if missing:
            self.embedded_here += len(missing)
            out[missing] = self.local.embed([texts[n] for n in missing])
        return out


def _pyspark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingDependencyError("pyspark", "spark") from None
    return SparkSession


def spark_session(master: str, app_name: str = "kbqa-ingest"):
    """A Spark session on `master` (local[2], spark://host:7077, …) whose Python workers run
    this interpreter."""
    SparkSession = _pyspark()
    # The workers must import the kbqa that runs here (a checkout on PYTHONPATH, a venv).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.executorEnv.PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing, a master that does not answer
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KbqaError(
            f"--spark {master}: cannot start Spark ({first}); is Java 17 installed?"
        ) from exc
    spark.sparkContext.setLogLevel("WARN")
    return spark


# -- what the executors run -------------------------------------------------------------------


def _task(
    rows: Any,
    known_docs: dict[str, str],
    max_chars: int,
    soft_max_chars: int,
) -> dict[str, Any]:
    """One item: hash, skip if unchanged, else parse and chunk (or take the given document)."""
    out: dict[str, Any] = {"digest": "", "status": "", "error": "", "document": b"", "timings": {}}
    timings: dict[str, float] = {"hash": 0.0, "parse": 0.0, "chunk": 0.0}
    doc: Document | None = None
    if rows["document"]:
        doc = pickle.loads(rows["document"])
        out["digest"] = doc.content_hash
    else:
        t = time.perf_counter()
        try:
            out["digest"] = content_hash(Path(rows["path"]))
        except ParseError as exc:
            out["status"], out["error"] = "no-fingerprint", str(exc)
            return out
        finally:
            timings["hash"] += time.perf_counter() - t
    if known_docs.get(rows["uri"]) == out["digest"]:
        out["status"] = "unchanged"
        out["timings"] = timings
        return out
    if doc is None:
        try:
            doc = parse_file(Path(rows["path"]), max_chars, soft_max_chars, out["digest"], timings)
        except ParseError as exc:
            out["status"], out["error"] = "failed", str(exc)
            return out
        except Exception as exc:  # a parser bug must not stop the other files
            out["status"] = "failed"
            out["error"] = f"unexpected error: {type(exc).__name__}: {exc}"
            return out
    out["status"], out["document"], out["timings"] = "loaded", pickle.dumps(doc), timings
    return out


def _partition(
    batches: Iterator[Any],
    factory: EmbedderFactory,
    key: str,
    known_docs: dict[str, str],
    known_texts: set[str],
    max_chars: int,
    soft_max_chars: int,
    threads: int,
) -> Iterator[Any]:
    import pandas as pd

    embedder = _WORKER_EMBEDDERS.get(key)
    for batch in batches:
        results, texts = [], {}
        for _, row in batch.iterrows():
            result = _task(row, known_docs, max_chars, soft_max_chars)
            results.append(result)
            if result["document"]:
                doc = pickle.loads(result["document"])
                for c in doc.chunks:
                    text = embedding_text(doc.title, c.heading, c.text)
                    digest = text_hash(text)
                    if digest not in known_texts:
                        texts[digest] = text
        seconds = 0.0
        vectors: dict[str, bytes] = {}
        if texts:
            if embedder is None:
                _limit_threads(threads)
                embedder = _WORKER_EMBEDDERS[key] = factory()
            order = sorted(texts)  # the local ingest embeds in hash order too
            t = time.perf_counter()
            embedded = embedder.embed([texts[h] for h in order])
            seconds = time.perf_counter() - t
            vectors = {
                h: v.astype(np.float32).tobytes() for h, v in zip(order, embedded, strict=True)
            }
        yield pd.DataFrame(
            {
                "task": batch["task"].to_numpy(),
                "digest": [r["digest"] for r in results],
                "status": [r["status"] for r in results],
                "error": [r["error"] for r in results],
                "document": [r["document"] for r in results],
                "timings": [json.dumps(r["timings"]) for r in results],
                # The partition's new vectors ride on its first row.
                "vectors": [pickle.dumps(vectors)] + [b""] * (len(results) - 1),
                "embed_seconds": [seconds] + [0.0] * (len(results) - 1),
            }
        )


def _limit_threads(threads: int) -> None:
    # N tasks on N cores: one torch thread each, or they fight over the same cores.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(max(1, threads))


# -- the driver -------------------------------------------------------------------------------


def run_spark(
    master: str,
    sources: list[Source],
    store: Store,
    local_embedder: Embedder,
    factory: EmbedderFactory,
    max_chars: int,
    soft_max_chars: int,
    partitions: int = 0,
) -> SparkResult:
    """Run the parse, chunk and embed stages of `sources` on Spark; the returned sources and
    embedder go to `Indexer.ingest` as the local ingest's would."""
    started = time.perf_counter()
    spark = spark_session(master)
    with store.session() as s:
        known_docs = dict(s.execute(select(DocumentRow.uri, DocumentRow.content_hash)).all())
        known_texts = set(s.scalars(select(ChunkRow.text_hash)).all())
    tasks, where = [], []
    for n, source in enumerate(sources):
        for m, item in enumerate(source.items):
            path, document = _origin(item)
            tasks.append({"task": len(tasks), "uri": item.uri, "path": path, "document": document})
            where.append((n, m))
    results: dict[int, Any] = {}
    vectors: dict[str, np.ndarray] = {}
    stages = {"hash": 0.0, "parse": 0.0, "chunk": 0.0, "embed": 0.0}
    if tasks:
        import pandas as pd
        from pyspark.sql.types import (
            BinaryType,
            DoubleType,
            LongType,
            StringType,
            StructField,
            StructType,
        )

        schema = StructType(
            [
                StructField("task", LongType()),
                StructField("digest", StringType()),
                StructField("status", StringType()),
                StructField("error", StringType()),
                StructField("document", BinaryType()),
                StructField("timings", StringType()),
                StructField("vectors", BinaryType()),
                StructField("embed_seconds", DoubleType()),
            ]
        )
        parallelism = spark.sparkContext.defaultParallelism
        partitions = partitions or min(len(tasks), 4 * parallelism)
        threads = int(spark.conf.get("spark.task.cpus", "1"))
        key = repr(factory)
        frame = spark.createDataFrame(pd.DataFrame(tasks)).repartition(partitions)

        def run(batches: Iterator[Any]) -> Iterator[Any]:
            return _partition(
                batches,
                factory,
                key,
                known_docs,
                known_texts,
                max_chars,
                soft_max_chars,
                threads,
            )

        # collect(), not toLocalIterator(): that one runs the partitions one after another.
        for row in frame.mapInPandas(run, schema).collect():
            results[row["task"]] = row
            for stage, seconds in json.loads(row["timings"]).items():
                stages[stage] = stages.get(stage, 0.0) + seconds
            stages["embed"] += row["embed_seconds"]
            if row["vectors"]:
                for digest, raw in pickle.loads(row["vectors"]).items():
                    vectors[digest] = np.frombuffer(raw, dtype=np.float32)
    rebuilt = [
        Source(s.root, s.kind, [], s.complete, list(s.problems), list(s.unsupported))
        for s in sources
    ]
    for task, (n, m) in enumerate(where):
        rebuilt[n].items.append(_loaded_item(sources[n].items[m], results[task]))
    log.info(
        "Spark ingest of %d items: %d new vectors in %.1f s",
        len(tasks),
        len(vectors),
        time.perf_counter() - started,
    )
    stages["spark"] = time.perf_counter() - started
    return SparkResult(rebuilt, PrecomputedEmbedder(vectors, local_embedder), stages, len(tasks))


def _origin(item: Item) -> tuple[str, bytes]:
    """(path, b"") for a file the executors read, or ("", the pickled document) for one that
    is already built (a Slack thread)."""
    path = Path(item.uri)
    if path.is_absolute() and path.is_file():
        return str(path), b""
    return "", pickle.dumps(item.load(item.fingerprint(), {}))


def _loaded_item(item: Item, result: Any) -> Item:
    """The item as the executor left it: fingerprint and document known, or the failure."""
    status, digest, error = result["status"], result["digest"], result["error"]
    timings = json.loads(result["timings"])
    document = pickle.loads(result["document"]) if result["document"] else None

    def fingerprint() -> str:
        if status == "no-fingerprint":
            raise ParseError(error)
        return digest

    def load(_digest: str, stage_timings: dict[str, float]) -> Document:
        for stage in ("parse", "chunk"):
            stage_timings[stage] = stage_timings.get(stage, 0.0) + timings.get(stage, 0.0)
        if status == "failed":
            raise ParseError(error)
        if document is None:
            # The executor saw it unchanged but the database changed since: another ingest ran.
            raise ParseError("changed by another ingest during this one: ingest it again")
        return document

    return Item(item.uri, item.name, fingerprint, load)
