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
from kbqa.ingest.files import FileLimits, content_hash, parse_file
from kbqa.ingest.pipeline import (
    Embedder,
    IndexSink,
    Written,
    embed_by_hash,
    embedding_text,
    store_documents,
    stored_vectors,
    text_hash,
)
from kbqa.ingest.sources import Item, Source
from kbqa.ingest.worker import ParseWorker
from kbqa.redact import redact
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Document

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder]

# Per Python worker: the embedder is loaded by the first task and reused by the next ones;
# so are the database connections of executors that write.
_WORKER_EMBEDDERS: dict[str, Embedder] = {}
_WORKER_STORES: dict[str, tuple[Store, IndexSink | None]] = {}
# ...and its parse worker (ingest/worker.py), so that a hostile file costs an executor at most
# max_file_seconds and max_parse_memory_bytes, as it does the local ingest.
_WORKER_PARSERS: dict[tuple[FileLimits, int, int], ParseWorker] = {}


def _parser(limits: FileLimits, max_chars: int, soft_max_chars: int) -> ParseWorker:
    key = (limits, max_chars, soft_max_chars)
    if key not in _WORKER_PARSERS:
        _WORKER_PARSERS[key] = ParseWorker(limits, max_chars, soft_max_chars)
    return _WORKER_PARSERS[key]


@dataclass(frozen=True)
class WriteTarget:
    """Where executors write: the database (a server one: many writers at once) and, for
    pgvector, how to build the index whose search columns they fill (given the Store)."""

    database_url: str
    busy_seconds: float = 30.0
    embedder_name: str = ""
    dim: int = 0
    index_factory: Callable[[Store], IndexSink] | None = None

    def __repr__(self) -> str:  # the URL may carry a password
        return f"WriteTarget(dim={self.dim}, embedder={self.embedder_name!r})"


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


# -- what the executors run -------------------------------------------------------------------


def _task(
    rows: Any,
    known_docs: dict[str, str],
    max_chars: int,
    soft_max_chars: int,
    limits: FileLimits | None = None,
) -> dict[str, Any]:
    """One item: hash, skip if unchanged, else parse and chunk (or take the given document).
    With `limits` (the settings'), the file is parsed in the Python worker's parse worker
    within them, as the local ingest parses: size, time and memory; without, in-process."""
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
            path = Path(rows["path"])
            if limits is None:
                doc = parse_file(path, max_chars, soft_max_chars, out["digest"], timings)
            else:
                doc = _parser(limits, max_chars, soft_max_chars).parse(path, out["digest"], timings)
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
    target: WriteTarget | None = None,
    limits: FileLimits | None = None,
) -> Iterator[Any]:
    import pandas as pd

    embedder = _WORKER_EMBEDDERS.get(key)

    def load_embedder() -> Embedder:
        nonlocal embedder
        if embedder is None:
            _limit_threads(threads)
            embedder = _WORKER_EMBEDDERS[key] = factory()
        return embedder

    for batch in batches:
        results, texts = [], {}
        for _, row in batch.iterrows():
            result = _task(row, known_docs, max_chars, soft_max_chars, limits)
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
            t = time.perf_counter()
            vectors = embed_by_hash(load_embedder(), texts)
            seconds = time.perf_counter() - t
        written = [""] * len(results)
        store_seconds = 0.0
        if target is not None:
            t = time.perf_counter()
            written = _write_batch(
                target, results, batch["source_id"].tolist(), vectors, load_embedder, known_docs
            )
            store_seconds = time.perf_counter() - t
            vectors = {}  # in the database now; the driver needs neither them nor the documents
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
                "embedded": [len(texts)] + [0] * (len(results) - 1),
                "written": written,
                "store_seconds": [store_seconds] + [0.0] * (len(results) - 1),
            }
        )


def _worker_store(target: WriteTarget) -> tuple[Store, IndexSink | None]:
    key = repr((target.database_url, target.dim))
    if key not in _WORKER_STORES:
        store = Store(target.database_url, target.busy_seconds)
        index = target.index_factory(store) if target.index_factory else None
        _WORKER_STORES[key] = (store, index)
    return _WORKER_STORES[key]


def _write_batch(
    target: WriteTarget,
    results: list[dict[str, Any]],
    source_ids: list[int],
    vectors: dict[str, bytes],
    load_embedder: Callable[[], Embedder],
    known_docs: dict[str, str],
) -> list[str]:
    """Write a batch's loaded documents in one transaction, as the local ingest does; each
    written result's document is dropped and its outcome (JSON) returned in its place.

    Added or updated is what the driver saw before the job: a task Spark retries after a
    failed attempt had committed replaces that attempt's rows and still counts as added."""
    store, index = _worker_store(target)
    loaded = [(n, pickle.loads(r["document"])) for n, r in enumerate(results) if r["document"]]
    out = [""] * len(results)
    if not loaded:
        return out
    texts = [embedding_text(d.title, c.heading, c.text) for _, d in loaded for c in d.chunks]
    hashes = [text_hash(t) for t in texts]
    with store.session() as s:
        uris = [d.uri for _, d in loaded]
        existing = dict(
            s.execute(
                select(DocumentRow.uri, DocumentRow.id).where(DocumentRow.uri.in_(uris))
            ).all()
        )
        known = dict(vectors)
        known.update(stored_vectors(s, [h for h in hashes if h not in known]))
        # A stored vector deleted since the driver looked (another ingest): embed it here.
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        if missing:
            known.update(embed_by_hash(load_embedder(), missing))
        stored, at = [], 0
        for n, doc in loaded:
            chunk_vectors = [(h, known[h]) for h in hashes[at : at + len(doc.chunks)]]
            at += len(doc.chunks)
            one = store_documents(s, [(doc, existing.get(doc.uri))], source_ids[n], chunk_vectors)
            stored.append((n, doc.uri, one))
        if target.embedder_name:
            store.set_meta(s, "embedding_model", target.embedder_name)
            store.set_meta(s, "embedding_dim", str(target.dim))
        s.commit()
    indexed = False
    if index is not None:
        rows = [r for _, _, one in stored for r in one.rows]
        if rows:
            index.add(
                np.array([r.id for r in rows], dtype=np.int64),
                np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows]),
            )
        indexed = True
    for n, uri, one in stored:
        results[n]["document"] = b""
        out[n] = json.dumps(
            {
                "added": uri not in known_docs,
                "old_ids": [int(i) for i in one.old_ids],
                "new_ids": [int(r.id) for r in one.rows],
                "indexed": indexed,
            }
        )
    return out


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
