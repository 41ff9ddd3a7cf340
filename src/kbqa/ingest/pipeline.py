"""The ingest pipeline: sources -> documents and chunks in the database -> vectors in the index.

The database is the source of truth. Each batch of documents is committed in one transaction
with its chunks and embeddings; the vector index follows, is saved atomically at the end, and
is checked against the database whenever it is opened (see `open_vector_index`). A crash at any
point therefore loses at most the uncommitted batch, and never leaves the two disagreeing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kbqa import faults
from kbqa.errors import KbqaError, ParseError
from kbqa.ingest.partition import HEADING_SEPARATOR
from kbqa.ingest.sources import Item, Source
from kbqa.ingest.writes import Fingerprints, delete_documents, store_documents, stored_vectors
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow, RunRow, SourceRow, Store
from kbqa.store.db import process_identity
from kbqa.store.tables import utcnow
from kbqa.types import Document

log = logging.getLogger(__name__)

STAGES = ("hash", "parse", "chunk", "embed", "store")
Progress = Callable[[int, int, str], None]  # (files done, files in all, current file)


class Embedder(Protocol):
    """What the pipeline needs of an embedder (`kbqa.retrieval.embedder` has the real ones)."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class IndexSink(Protocol):
    """What the pipeline needs of the vector index: it follows the database, batch by batch."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def save(self, path: Path) -> None: ...


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    chunks: int = 0  # chunks written by this run
    embedded: int = 0  # of those, how many needed the embedder (the rest reused stored vectors)
    written_elsewhere: int = 0  # documents another process wrote (Spark's executors)
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def embedding_text(title: str, heading: str, text: str) -> str:
    """What is embedded: the chunk with its document title and headings for context."""
    context = HEADING_SEPARATOR.join(p for p in [title, heading] if p and p not in text[:200])
    return f"{context}\n{text}" if context else text


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def embed_by_hash(embedder: Embedder, texts: dict[str, str]) -> dict[str, bytes]:
    """Embed texts keyed by their hash, in hash order (the local ingest and Spark's executors
    alike); each vector as float32 bytes, as stored."""
    order = sorted(texts)
    vectors = embedder.embed([texts[h] for h in order])
    return {h: v.astype(np.float32).tobytes() for h, v in zip(order, vectors, strict=True)}


class PrecomputedEmbedder:
    """The Indexer's embedder when the vectors were computed elsewhere (a Spark job's
    executors, or the prefetch threads of a local ingest): each text's vector by its hash. A
    text not found (a stored vector deleted meanwhile, a text that came twice) is embedded
    here. With `take`, a vector is removed once used, so the dict holds only what is ahead."""

    def __init__(self, vectors: dict[str, np.ndarray], local: Embedder, take: bool = False):
        self.vectors, self.local, self.take = vectors, local, take
        self.name, self.dim = local.name, local.dim
        self.embedded_here = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = []
        for n, text in enumerate(texts):
            h = text_hash(text)
            vector = self.vectors.pop(h, None) if self.take else self.vectors.get(h)
            if vector is None:
                missing.append(n)
            else:
                out[n] = vector
        if missing:
            self.embedded_here += len(missing)
            out[missing] = self.local.embed([texts[n] for n in missing])
        return out


def check_embedder(store: Store, embedder: Embedder) -> None:
    """Refuse to mix vectors from two embedders in one index. The name includes the backend
    ("all-MiniLM-L6-v2@onnx-int8"): backends give close but different vectors."""
    stored = store.get_meta("embedding_model")
    if stored is not None and stored != embedder.name:
        raise KbqaError(
            f"this knowledge base was embedded with {stored!r}, not {embedder.name!r}: "
            f"set embedding_model and embedding_backend back (embedding_backend = 'auto' "
            f"keeps the stored one), or use another KBQA_HOME and ingest again"
        )


@dataclass
class _Pending:
    doc: Document
    existing_id: int | None


@dataclass
class Written:
    """A document another process wrote and committed (a Spark executor): what the index and
    the report must follow. `indexed`: its search columns are filled too (pgvector)."""

    added: bool  # a new document (else it replaced a stored version)
    old_ids: list[int]
    new_ids: list[int]
    indexed: bool = False


@dataclass
class Remote:
    """What a remote run (Spark) hands back: the sources with their items as it left them
    (fingerprinted; loaded or failed), the documents it wrote itself by uri, and how many
    chunk texts it embedded."""

    sources: list[Source]
    written: dict[str, Written] = field(default_factory=dict)
    embedded: int = 0


# Runs the remote stages once the ingest's run is recorded: source ids -> what it did.
RemoteRun = Callable[[list[int]], Remote]


class Indexer:
    def __init__(self, store: Store, embedder: Embedder, index: IndexSink, settings: Settings):
        check_embedder(store, embedder)
        self.store, self.embedder, self.index, self.settings = store, embedder, index, settings

    def ingest(
        self,
        sources: list[Source],
        progress: Progress | None = None,
        remote: RemoteRun | None = None,
        started: float | None = None,
    ) -> IngestReport:
        """Bring the knowledge base in line with the sources: add, update, skip, remove.

        With `remote` (a Spark job), the parse, chunk, embed and, where it says so, write
        stages run there, inside this run: it gets the sources' ids, and what it wrote is
        followed here. The run is recorded as `ok`, `failed` (with the error) or `interrupted`
        (Ctrl-C), with its seconds from `started` (a `time.perf_counter()`: the caller's start,
        so that the record says what `kbqa ingest` says; by default now)."""
        started = time.perf_counter() if started is None else started
        report = IngestReport(stages=dict.fromkeys(STAGES, 0.0))
        self._known = Fingerprints(self.store)  # as this run finds them
        try:
            with self.store.session() as s:
                run = RunRow(roots=[source.root for source in sources], owner=process_identity())
                s.add(run)
                s.commit()
                run_id = run.id
        except OperationalError as exc:
            if "locked" in str(exc):
                raise self._locked() from exc
            raise
        for source in sources:
            report.unsupported += source.unsupported
            report.failed += source.problems
        try:
            try:
                self._ingest(sources, progress, report, remote)
            except BaseException:
                # The index follows the batches that did commit; a failure to save it now is
                # repaired when it is next opened, and must not hide the first error.
                try:
                    self._save_index(report)
                except Exception as exc:
                    log.warning("could not save the vector index: %s", exc)
                raise
            self._save_index(report)
            faults.point("run-end")
        except KeyboardInterrupt:
            self._finish(run_id, report, started, "interrupted", "interrupted (Ctrl-C)")
            raise
        except OperationalError as exc:
            if "locked" not in str(exc):
                self._finish(run_id, report, started, "failed", _describe(exc))
                raise
            error = self._locked()
            self._finish(run_id, report, started, "failed", str(error))
            raise error from exc
        except BaseException as exc:
            self._finish(run_id, report, started, "failed", _describe(exc))
            raise
        self._finish(run_id, report, started, "ok", None)
        return report

    def _ingest(
        self,
        sources: list[Source],
        progress: Progress | None,
        report: IngestReport,
        remote: RemoteRun | None = None,
    ) -> None:
        source_ids = [self._source_id(source) for source in sources]
        written: dict[str, Written] = {}
        if remote is not None:
            done_remotely = remote(source_ids)
            sources, written = done_remotely.sources, done_remotely.written
            report.embedded += done_remotely.embedded
        total = sum(len(source.items) for source in sources)
        done = 0
        for source, source_id in zip(sources, source_ids, strict=True):
            pending: list[_Pending] = []
            followed: list[Written] = []
            for item in source.items:
                if progress:
                    progress(done, total, Path(item.name).name)
                if item.uri in written:
                    followed.append(written[item.uri])
                else:
                    self._consider(item, source_id, pending, report)
                done += 1
                if sum(len(p.doc.chunks) for p in pending) >= 4 * self.settings.embed_batch_size:
                    self._write(pending, source_id, report)
                    pending = []
            self._write(pending, source_id, report)
            self._follow(followed, report)
            if source.complete or source.removed:  # a changes log's deletions, even if partial
                only = None if source.complete else set(source.removed)
                self._remove_missing(source_id, {i.uri for i in source.items}, report, only)
        if progress:
            progress(total, total, "")

    def _locked(self) -> KbqaError:
        return KbqaError(
            f"the database is locked by another writer (waited "
            f"{self.settings.database_busy_seconds:g} s, database_busy_seconds); what was "
            f"committed before is kept: run the ingest again when it is free"
        )

    def _save_index(self, report: IngestReport) -> None:
        t = time.perf_counter()
        self.index.save(self.settings.index_path)
        report.stages["store"] += time.perf_counter() - t

    def _finish(
        self, run_id: int, report: IngestReport, started: float, status: str, error: str | None
    ) -> None:
        report.seconds = time.perf_counter() - started
        try:
            with self.store.session() as s:
                run = s.get(RunRow, run_id)
                run.finished_at = utcnow()
                run.status = status
                run.error = error
                run.stats = report.as_dict()
                s.commit()
        except Exception as exc:
            # Left "running", the run is marked interrupted once this process is gone.
            if status == "ok":
                raise
            log.warning("could not record ingest run %d as %s: %s", run_id, status, exc)

    def _source_id(self, source: Source) -> int:
        with self.store.session() as s:
            row = s.scalar(select(SourceRow).where(SourceRow.root == source.root))
            if row is None:
                row = SourceRow(root=source.root, kind=source.kind)
                s.add(row)
                s.commit()
            return row.id

    def _consider(self, item: Item, source_id: int, pending: list[_Pending], report: IngestReport):
        """Fingerprint the item; load (parse) it when it is new or changed."""
        t = time.perf_counter()
        try:
            digest = item.fingerprint()
        except ParseError as exc:
            report.failed.append((item.name, str(exc)))
            return
        finally:
            report.stages["hash"] += time.perf_counter() - t
        if self._known.unchanged(source_id, item.uri, digest):
            report.unchanged += 1
            return
        with self.store.session() as s:
            existing = s.execute(
                select(DocumentRow.id, DocumentRow.content_hash, DocumentRow.source_id).where(
                    DocumentRow.uri == item.uri
                )
            ).first()
        if existing is not None and existing.content_hash == digest:
            report.unchanged += 1
            if existing.source_id != source_id:
                with self.store.session() as s:
                    s.get(DocumentRow, existing.id).source_id = source_id
                    s.commit()
            return
        faults.point("parse")
        try:
            doc = item.load(digest, report.stages)
        except ParseError as exc:
            # The previous version, if any, stays indexed: a broken edit loses nothing.
            report.failed.append((item.name, str(exc)))
            return
        except Exception as exc:  # a parser bug must not stop the other files
            log.debug("unexpected error loading %s", item.name, exc_info=True)
            report.failed.append((item.name, f"unexpected error: {type(exc).__name__}: {exc}"))
            return
        pending.append(_Pending(doc, existing.id if existing else None))

    def _embed(self, pending: list[_Pending], report: IngestReport) -> list[tuple[str, bytes]]:
        """(text hash, float32 bytes) per chunk, in order; stored vectors are reused."""
        texts = [
            embedding_text(p.doc.title, c.heading, c.text) for p in pending for c in p.doc.chunks
        ]
        hashes = [text_hash(t) for t in texts]
        with self.store.session() as s:
            known = stored_vectors(s, hashes)
        todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        t = time.perf_counter()
        faults.point("embed")
        known.update(embed_by_hash(self.embedder, todo))
        report.stages["embed"] += time.perf_counter() - t
        report.embedded += len(todo)
        return [(h, known[h]) for h in hashes]

    def _write(self, pending: list[_Pending], source_id: int, report: IngestReport) -> None:
        if not pending:
            return
        embedded = self._embed(pending, report)
        t = time.perf_counter()
        with self.store.session() as s:
            stored = store_documents(
                s, [(p.doc, p.existing_id) for p in pending], source_id, embedded
            )
            self.store.set_meta(s, "embedding_model", self.embedder.name)
            self.store.set_meta(s, "embedding_dim", str(self.embedder.dim))
            faults.point("commit")
            s.commit()
        faults.point("committed")
        # Only after the commit: the index must never hold a vector the database lacks for long.
        self.index.remove(np.array(stored.old_ids, dtype=np.int64))
        self.index.add(
            np.array([r.id for r in stored.rows], dtype=np.int64),
            np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in stored.rows]),
        )
        report.added += stored.added
        report.updated += stored.updated
        report.chunks += len(stored.rows)
        report.stages["store"] += time.perf_counter() - t

    def _follow(self, written: list[Written], report: IngestReport) -> None:
        """Bring the index in line with documents another process wrote (Spark executors):
        their old chunks out, their new ones in, read back from the database in batches."""
        t = time.perf_counter()
        old = [i for w in written for i in w.old_ids]
        self.index.remove(np.array(old, dtype=np.int64))
        new = np.array([i for w in written if not w.indexed for i in w.new_ids], dtype=np.int64)
        for start in range(0, len(new), 4096):
            ids, vectors = self.store.embeddings(new[start : start + 4096])
            if len(ids):
                self.index.add(ids, vectors)
        report.written_elsewhere += len(written)
        for w in written:
            report.added += w.added
            report.updated += not w.added
            report.chunks += len(w.new_ids)
        report.stages["store"] += time.perf_counter() - t

    def _remove_missing(self, source_id: int, seen: set[str], report: IngestReport, only=None):
        """Drop documents of this source whose files are gone (or, `only`, these uris)."""
        with self.store.session() as s:
            gone = [
                d
                for d in s.scalars(select(DocumentRow).where(DocumentRow.source_id == source_id))
                if d.uri not in seen and (only is None or d.uri in only)
            ]
            if not gone:
                return
            chunk_ids = s.scalars(
                select(ChunkRow.id).where(ChunkRow.document_id.in_([d.id for d in gone]))
            ).all()
            delete_documents(s, [d.id for d in gone])
            s.commit()
        faults.point("remove")
        self.index.remove(np.array(chunk_ids, dtype=np.int64))
        report.removed += len(gone)


def _describe(exc: BaseException) -> str:
    """An error as one line for the run's record."""
    if isinstance(exc, KbqaError):
        return str(exc)
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}"[:500]
