"""The search snapshot: the vector index, the BM25 index and the chunks' metadata, as the
database held them at one moment.

A snapshot is never changed after it is built, so readers need no locks. When the database
changes (an ingest here or in another process), `Snapshots` builds a new one in the background
and publishes it with one reference assignment; a question keeps the snapshot it started with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from kbqa.errors import KbqaError
from kbqa.retrieval.index import IndexChoice, VectorIndex
from kbqa.retrieval.lexical import LexicalIndex, lexical_text
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Hit

log = logging.getLogger(__name__)
_ALLOWED_KEPT = 32  # audiences whose allowed chunk ids a snapshot keeps

Generation = tuple[int, int, int]


def generation(store: Store) -> Generation:
    """What identifies the database's set of chunks: (count, max id, sum of ids). Chunk ids
    only grow and are never reused, so any addition changes the max and any deletion alone
    changes the count."""
    with store.session() as s:
        count, top, total = s.execute(
            select(func.count(ChunkRow.id), func.max(ChunkRow.id), func.sum(ChunkRow.id))
        ).one()
    return int(count or 0), int(top or 0), int(total or 0)


def _generation_of(ids: np.ndarray) -> Generation:
    return len(ids), int(ids.max()) if len(ids) else 0, int(ids.sum()) if len(ids) else 0


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    uri: str
    title: str
    meta: dict[str, Any]
    mtime: float


@dataclass(frozen=True)
class ChunkInfo:
    heading: str
    text: str
    document: DocumentInfo


@dataclass(frozen=True, eq=False)
class Snapshot:
    """What a search reads. `generation` says which state of the database it shows."""

    generation: Generation
    index: VectorIndex
    lexical: LexicalIndex
    chunks: dict[int, ChunkInfo]
    built_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # Built once, read by every filtered search: chunk ids and the document each belongs to.
        documents: dict[int, DocumentInfo] = {}
        ids = np.fromiter(self.chunks, dtype=np.int64, count=len(self.chunks))
        owner = np.zeros(len(ids), dtype=np.int64)
        for row, info in enumerate(self.chunks.values()):
            documents.setdefault(info.document.id, info.document)
            owner[row] = info.document.id
        object.__setattr__(self, "_chunk_ids", ids)
        object.__setattr__(self, "_chunk_documents", owner)
        object.__setattr__(self, "_documents", documents)
        # allowed_ids per Scope (per audience): the snapshot never changes, so neither do they.
        object.__setattr__(self, "_allowed", {})
        object.__setattr__(self, "_allowed_lock", threading.Lock())

    def __len__(self) -> int:
        return len(self.chunks)

    def allowed_ids(self, allow: Callable[..., bool]) -> np.ndarray:
        """The chunk ids (ascending) that a filter lets through. A filter with
        `allows_document(uri, meta)` (retrieval/access.py `Scope`) is asked once per document;
        any other callable is asked per chunk, with the chunk's Hit."""
        by_document = getattr(allow, "allows_document", None)
        key = getattr(allow, "key", None)
        if by_document is not None and key is not None:
            with self._allowed_lock:
                cached = self._allowed.get(key)
            if cached is not None:
                return cached
            allowed = self._allowed_ids_uncached(allow)
            allowed.flags.writeable = False  # shared by every search of this audience
            with self._allowed_lock:
                if len(self._allowed) >= _ALLOWED_KEPT:
                    self._allowed.pop(next(iter(self._allowed)))
                self._allowed[key] = allowed
            return allowed
        return self._allowed_ids_uncached(allow)

    def _allowed_ids_uncached(self, allow: Callable[..., bool]) -> np.ndarray:
        ids = self._chunk_ids
        by_document = getattr(allow, "allows_document", None)
        if by_document is not None:
            allowed_docs = [
                doc_id
                for doc_id, doc in self._documents.items()
                if by_document(doc.uri, {**doc.meta, "mtime": doc.mtime})
            ]
            keep = np.isin(self._chunk_documents, np.array(allowed_docs, dtype=np.int64))
        else:
            hits = self.hits(ids, np.zeros(len(ids)))
            keep = np.array([bool(allow(hit)) for hit in hits], dtype=bool)
        return np.sort(ids[keep]) if len(ids) else ids

    def hits(
        self, ids: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
    ) -> list[Hit]:
        """Hits for chunk ids with their scores, in order; ids this snapshot lacks are left out."""
        out = []
        for chunk_id, score in zip(ids, scores, strict=True):
            info = self.chunks.get(int(chunk_id))
            if info is None:
                continue
            doc = info.document
            out.append(
                Hit(
                    chunk_id=int(chunk_id),
                    score=float(score),
                    text=info.text,
                    heading=info.heading,
                    uri=doc.uri,
                    title=doc.title,
                    metadata={**doc.meta, "mtime": doc.mtime},
                )
            )
        return out

    def vectors(self, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids found, their vectors) for the given chunk ids, in the order given."""
        found = np.array([int(i) for i in ids if int(i) in self.chunks], dtype=np.int64)
        if not len(found):
            return found, np.zeros((0, self.index.dim), dtype=np.float32)
        if hasattr(self.index, "vectors_of"):  # an index kept in a database (pgvector)
            return found, self.index.vectors_of(found)
        return found, self.index.cpu.reconstruct_batch(found)


def build_snapshot(
    store: Store,
    index_path: Path,
    lexical_dir: Path,
    dim: int,
    stemmer: str = "english",
    use_gpu: bool = False,
    index: VectorIndex | None = None,
    choice: IndexChoice | None = None,
    lexical: LexicalIndex | None = None,
) -> Snapshot:
    """A snapshot of the database now. The vector index is `index` (which is then owned by the
    snapshot) or the saved file, made to agree with the database from stored embeddings; BM25 is
    loaded from lexical_dir when it was saved for exactly these chunks, else built and saved
    (or `lexical`, a lexical backend kept elsewhere, as PostgreSQL full-text search)."""
    started = time.perf_counter()
    # One statement, so the chunks and their documents are read as of one moment.
    with store.session() as s:
        rows = s.execute(
            select(
                ChunkRow.id,
                ChunkRow.heading,
                ChunkRow.text,
                DocumentRow.id,
                DocumentRow.uri,
                DocumentRow.title,
                DocumentRow.meta,
                DocumentRow.mtime,
            )
            .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
            .order_by(ChunkRow.id)
        ).all()
    documents: dict[int, DocumentInfo] = {}
    chunks: dict[int, ChunkInfo] = {}
    for chunk_id, heading, text, doc_id, uri, title, meta, mtime in rows:
        doc = documents.get(doc_id)
        if doc is None:
            doc = documents[doc_id] = DocumentInfo(doc_id, uri, title, meta or {}, mtime or 0.0)
        chunks[chunk_id] = ChunkInfo(heading, text, doc)

    if index is None:
        # Memory-mapped: read-only, as a published snapshot's index is (a repair reloads it).
        index = VectorIndex.load(index_path, dim, use_gpu, choice, mmap=True)
        ids = np.array(list(chunks), dtype=np.int64)
        indexed = index.ids()
        stale, missing = np.setdiff1d(indexed, ids), np.setdiff1d(ids, indexed)
        if len(stale) or len(missing):
            index = VectorIndex.load(index_path, dim, use_gpu, choice)
            log.warning(
                "vector index %s out of step with the database (%d stale, %d missing): "
                "repairing from stored embeddings",
                index_path,
                len(stale),
                len(missing),
            )
            index.remove(stale)
            found, vectors = store.embeddings(missing)
            index.add(found, vectors)
            # A chunk deleted since the rows were read has no embedding any more: leave it out.
            for gone in np.setdiff1d(missing, found).tolist():
                chunks.pop(gone, None)
            try:
                index.save(index_path)
            except KbqaError as exc:  # a full disk or read-only home still serves
                log.warning("%s", exc)
    else:
        # The caller's index was kept in step by the write path; drop what it lacks.
        for gone in np.setdiff1d(np.array(list(chunks), dtype=np.int64), index.ids()).tolist():
            chunks.pop(gone, None)

    ids = np.array(list(chunks), dtype=np.int64)  # ascending: the rows were read in id order
    if lexical is None:
        lexical = LexicalIndex.load(lexical_dir, ids, stemmer)
    if lexical is None:
        texts = [lexical_text(c.document.title, c.heading, c.text) for c in chunks.values()]
        lexical = LexicalIndex.from_texts(ids, texts, stemmer)
        try:
            lexical.save(lexical_dir, "-".join(map(str, _generation_of(ids))))
        except (OSError, RuntimeError) as exc:  # a full disk or read-only home still serves
            log.warning("cannot save the BM25 index in %s: %s", lexical_dir, exc)
    if index.use_gpu:
        index._searchable()  # make the GPU copy now, not in the first (concurrent) searches
    snapshot = Snapshot(_generation_of(ids), index, lexical, chunks)
    log.info(
        "search snapshot of %d chunks built in %.0f ms",
        len(chunks),
        (time.perf_counter() - started) * 1000,
    )
    return snapshot


class Snapshots:
    """The current snapshot of a database. `current()` checks at most every `check_seconds`
    whether the database has changed and, if so, builds the next snapshot in a background
    thread while questions go on with the current one."""

    def __init__(
        self,
        build: Callable[[], Snapshot],
        changed: Callable[[Snapshot], bool],
        check_seconds: float = 1.0,
    ):
        self._build, self._changed, self.check_seconds = build, changed, check_seconds
        self._current: Snapshot | None = None
        self._lock = threading.Lock()  # one build at a time
        self._checked = 0.0
        self._building = False
        self._sequence = 0  # builds started
        self._published = 0  # sequence number of the build that is current
        self.builds = 0

    def current(self) -> Snapshot:
        snapshot = self._current
        if snapshot is None:
            return self.refresh()
        now = time.monotonic()
        if now - self._checked >= self.check_seconds and not self._building:
            self._checked = now
            try:
                changed = self._changed(snapshot)
            except Exception:  # a busy database must not fail the question
                log.warning("could not check the database for changes", exc_info=True)
                changed = False
            if changed:
                self._start_background()
        return self._current

    def peek(self) -> Snapshot | None:
        """The current snapshot if one was built, without building or checking."""
        return self._current

    def refresh(self) -> Snapshot:
        """Build a snapshot now, publish it and return it."""
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        snapshot = self._build()
        self._publish(snapshot, sequence)
        return self._current

    def publish(self, snapshot: Snapshot) -> None:
        """Make `snapshot` (built by the caller) the current one."""
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        self._publish(snapshot, sequence)

    def _publish(self, snapshot: Snapshot, sequence: int) -> None:
        with self._lock:
            # A build that started earlier than the current one's must not replace it.
            if sequence > self._published:
                self._current, self._published = snapshot, sequence
                self.builds += 1
            self._checked = time.monotonic()

    def _start_background(self) -> None:
        with self._lock:
            if self._building:
                return
            self._building = True

        def run() -> None:
            try:
                self.refresh()
            except Exception:
                log.exception("rebuilding the search snapshot failed; keeping the current one")
            finally:
                self._building = False

        threading.Thread(target=run, name="kbqa-snapshot", daemon=True).start()

    @property
    def building(self) -> bool:
        return self._building
