"""What a Spark ingest's executors run (ingest/spark.py is the driver): hash, skip what is
unchanged, parse and chunk in the worker's parse worker, embed, and, with a server database,
write their own batches. Each Python worker keeps its embedder, stores and parse worker."""

from __future__ import annotations

import functools
import json
import logging
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from kbqa.errors import ParseError
from kbqa.ingest.files import FileLimits, content_hash, parse_file
from kbqa.ingest.pipeline import (
    Embedder,
    IndexSink,
    embed_by_hash,
    embedding_text,
    text_hash,
)
from kbqa.ingest.times import GitTimes, file_time
from kbqa.ingest.worker import ParseWorker
from kbqa.ingest.writes import store_documents, stored_vectors
from kbqa.store import DocumentRow, Store
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
            out["digest"] = content_hash(Path(rows["path"]), max_chars, soft_max_chars)
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
        doc = _dated(doc, path)
    out["status"], out["document"], out["timings"] = "loaded", pickle.dumps(doc), timings
    return out


def _dated(doc: Document, path: Path) -> Document:
    """The file's own time and author, as the local ingest dates it (ingest/times.py)."""
    try:
        data = path.read_bytes()
    except OSError:
        return doc
    times = file_time(path, data, doc.mtime, _git_times(path.parent))
    return replace(doc, metadata={**doc.metadata, **times})


@functools.lru_cache(maxsize=32)
def _git_times(folder: Path) -> GitTimes | None:
    # One history walk per folder an executor parses files of, not one per file.
    return GitTimes.open(folder)


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
