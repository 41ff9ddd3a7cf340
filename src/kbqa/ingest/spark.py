"""Big ingests as a Spark job (`kbqa ingest --spark MASTER PATH…`, extra `[spark]`).

The executors do the expensive stages: each task hashes its files, skips those whose content
hash the database already has, parses and chunks the rest, and embeds the chunks whose text
was never embedded (one embedder per Python worker, reused across tasks).

Who writes depends on the database:
- a server database (PostgreSQL): the executors write the documents, chunks and embeddings
  themselves, one transaction per batch, with the local ingest's own `store_documents`, and
  fill pgvector's search columns; the driver gets back only each file's outcome and the ids of
  the chunks written and replaced, and the `Indexer` follows them (the FAISS index reads the new
  vectors back from the database in batches), so the driver's memory does not grow with the
  corpus;
- SQLite (one writer at a time): the driver hands the results to the `Indexer` as items that
  are already loaded and an embedder that only looks vectors up.
Either way the incrementality and the per-file failure report are the local ingest's own. Files
must be readable at the same paths on the executors (local[N], or a shared filesystem).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from kbqa.errors import KbqaError, MissingDependencyError, ParseError
from kbqa.ingest.files import FileLimits
from kbqa.ingest.pipeline import (
    Embedder,
    PrecomputedEmbedder,
    Written,
)
from kbqa.ingest.sources import Item, Source
from kbqa.ingest.spark_tasks import (
    EmbedderFactory,
    WriteTarget,
    _partition,
)
from kbqa.redact import redact
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Document

log = logging.getLogger(__name__)


@dataclass
class SparkResult:
    """What the job produced: sources of items as the executors left them, the documents they
    wrote (executor writes) or an embedder that looks their vectors up, and its timings."""

    sources: list[Source]
    embedder: Embedder
    stages: dict[str, float] = field(default_factory=dict)
    tasks: int = 0
    written: dict[str, Written] = field(default_factory=dict)
    embedded: int = 0


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
        # A task's files go through parse, embed and (executor writes) one transaction in
        # batches of this many, which bounds an executor's memory and a transaction's size.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "256")
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
    source_ids: list[int] | None = None,
    target: WriteTarget | None = None,
    limits: FileLimits | None = None,
) -> SparkResult:
    """Run the parse, chunk and embed stages of `sources` on Spark; the returned sources and
    embedder go to `Indexer.ingest` as the local ingest's would. With `target` the executors
    also write (the sources' database ids in `source_ids`), and the result says what."""
    started = time.perf_counter()
    spark = spark_session(master)
    job = Job(sources, store, factory, max_chars, soft_max_chars, source_ids, target, limits)
    rows = job.run_on(spark, partitions) if job.tasks else []
    return job.result(rows, local_embedder, started)


_SCHEMA = [
    ("task", "long"),
    ("digest", "string"),
    ("status", "string"),
    ("error", "string"),
    ("document", "binary"),
    ("timings", "string"),
    ("vectors", "binary"),
    ("embed_seconds", "double"),
    ("embedded", "long"),
    ("written", "string"),
    ("store_seconds", "double"),
]


class Job:
    """One Spark ingest: its tasks (one per item), what the database already has, and how
    the executors' rows become the result."""

    def __init__(
        self,
        sources: list[Source],
        store: Store,
        factory: EmbedderFactory,
        max_chars: int,
        soft_max_chars: int,
        source_ids: list[int] | None = None,
        target: WriteTarget | None = None,
        limits: FileLimits | None = None,
    ):
        if target is not None and source_ids is None:
            raise ValueError("executors that write need the sources' ids")
        self.sources, self.factory, self.target, self.limits = sources, factory, target, limits
        self.max_chars, self.soft_max_chars = max_chars, soft_max_chars
        with store.session() as s:
            self.known_docs = dict(
                s.execute(select(DocumentRow.uri, DocumentRow.content_hash)).all()
            )
            self.known_texts = set(s.scalars(select(ChunkRow.text_hash)).all())
        self.tasks: list[dict[str, Any]] = []
        self.where: list[tuple[int, int]] = []
        for n, source in enumerate(sources):
            for m, item in enumerate(source.items):
                path, document = _origin(item)
                self.tasks.append(
                    {
                        "task": len(self.tasks),
                        "uri": item.uri,
                        "path": path,
                        "document": document,
                        "source_id": source_ids[n] if source_ids else 0,
                    }
                )
                self.where.append((n, m))

    def _run(self, threads: int) -> Callable[[Iterator[Any]], Iterator[Any]]:
        factory, key, target = self.factory, repr(self.factory), self.target
        known_docs, known_texts = self.known_docs, self.known_texts
        max_chars, soft_max_chars, limits = self.max_chars, self.soft_max_chars, self.limits

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
                target,
                limits,
            )

        return run

    def run_on(self, spark: Any, partitions: int = 0) -> list[Any]:
        """The executors' rows, one per task."""
        import pandas as pd

        schema = ", ".join(f"{name} {kind}" for name, kind in _SCHEMA)
        parallelism = spark.sparkContext.defaultParallelism
        partitions = partitions or min(len(self.tasks), 4 * parallelism)
        threads = int(spark.conf.get("spark.task.cpus", "1"))
        frame = spark.createDataFrame(pd.DataFrame(self.tasks)).repartition(partitions)
        # collect(), not toLocalIterator(): that one runs the partitions one after another.
        # With executor writes the rows are small: outcomes and chunk ids, no text or vectors.
        try:
            return frame.mapInPandas(self._run(threads), schema).collect()
        except Exception as exc:
            if type(exc).__name__ not in ("PythonException", "Py4JJavaError"):
                raise
            log.warning("the Spark job failed: %s", redact(str(exc)))
            raise KbqaError(f"--spark: a task failed: {task_error(str(exc))}") from None

    def run_here(self, batch_size: int = 256) -> list[dict[str, Any]]:
        """The same rows computed in this process, without Spark (tests, and a look at what
        the executors do)."""
        import pandas as pd

        frame = pd.DataFrame(self.tasks)
        batches = (frame.iloc[i : i + batch_size] for i in range(0, len(frame), batch_size))
        return [r for out in self._run(1)(batches) for r in out.to_dict("records")]

    def result(self, rows: list[Any], local_embedder: Embedder, started: float) -> SparkResult:
        results: dict[int, Any] = {}
        vectors: dict[str, np.ndarray] = {}
        written: dict[str, Written] = {}
        embedded = 0
        stages = {"hash": 0.0, "parse": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0}
        for row in rows:
            results[row["task"]] = row
            for stage, seconds in json.loads(row["timings"]).items():
                stages[stage] = stages.get(stage, 0.0) + seconds
            stages["embed"] += row["embed_seconds"]
            stages["store"] += row["store_seconds"]
            embedded += row["embedded"]
            if row["written"]:
                outcome = json.loads(row["written"])
                written[self.tasks[row["task"]]["uri"]] = Written(
                    outcome["added"], outcome["old_ids"], outcome["new_ids"], outcome["indexed"]
                )
            if row["vectors"]:
                for digest, raw in pickle.loads(row["vectors"]).items():
                    vectors[digest] = np.frombuffer(raw, dtype=np.float32)
        rebuilt = [
            Source(s.root, s.kind, [], s.complete, list(s.problems), list(s.unsupported))
            for s in self.sources
        ]
        for task, (n, m) in enumerate(self.where):
            rebuilt[n].items.append(_loaded_item(self.sources[n].items[m], results[task]))
        log.info(
            "Spark ingest of %d items: %d texts embedded, %d documents written by the"
            " executors in %.1f s",
            len(self.tasks),
            embedded,
            len(written),
            time.perf_counter() - started,
        )
        stages["spark"] = time.perf_counter() - started
        return SparkResult(
            rebuilt,
            PrecomputedEmbedder(vectors, local_embedder),
            stages,
            len(self.tasks),
            written,
            embedded,
        )


def task_error(message: str) -> str:
    """The Python error a failed Spark task raised, as one line with secrets masked, from the
    job's error text (a Python traceback inside a Java one)."""
    found = re.findall(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception): .+)$", message, re.M)
    python = [line for line in found if not line.startswith(("Py4J", "PythonException"))]
    line = python[-1] if python else (message.strip().splitlines() or ["unknown error"])[0]
    return redact(line.strip())[:300]


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
