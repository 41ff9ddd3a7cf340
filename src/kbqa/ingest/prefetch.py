"""Parsing and embedding on every core: the files an ingest will load are parsed ahead,
several at once (a ParsePool's workers, one per core), and each parsed file's chunks are
embedded by the thread that waited for its parse, while the write path takes them one by one
in its own order, so the documents, their chunks, their ids and their vectors come out as with
one worker. Embedding is half of an ingest with the packaged embedder: done ahead, beside the
other threads' parses, it is no longer one process's work behind the parsing.

Which files will be loaded is decided here the way the write path decides it (new, or its
content hash changed), with one query per source; the write path still decides for itself, and
a file it loads that was not parsed ahead is parsed then, as before."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import numpy as np
from sqlalchemy import select

from kbqa.errors import ParseError
from kbqa.ingest.pipeline import Embedder, PrecomputedEmbedder, embedding_text, text_hash
from kbqa.ingest.sources import Item, Source
from kbqa.ingest.worker import ParsePool
from kbqa.ingest.writes import stored_vectors
from kbqa.store import DocumentRow, Store
from kbqa.types import Document

log = logging.getLogger(__name__)


class Prefetch:
    """Parses (and, given an embedder, embeds) ahead for the sources handed to `sources`; use
    as a context manager, and give the write path `embedder(…)`."""

    def __init__(self, pool: ParsePool, store: Store, embedder: Embedder | None = None):
        self.pool, self.store, self._embedder = pool, store, embedder
        # Parsed documents held at most this far ahead of the write path (memory stays bounded).
        self.ahead = 4 * pool.size
        self._threads = ThreadPoolExecutor(pool.size, thread_name_prefix="kbqa-parse")
        # Vectors embedded ahead, by chunk text hash, until the write path takes them.
        self.vectors: dict[str, np.ndarray] = {}

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *_exc: object) -> None:
        # Nothing is left in flight after a complete ingest; after an error or Ctrl-C the
        # pool's close, next, stops the parses still running.
        self._threads.shutdown(wait=False, cancel_futures=True)

    def embedder(self, local: Embedder) -> Embedder:
        """The write path's embedder: the vectors embedded ahead, the rest by `local`."""
        return PrecomputedEmbedder(self.vectors, local, take=True)

    def sources(self, sources: list[Source]) -> list[Source]:
        """The sources, their files' loads parsed ahead (in the order they are listed)."""
        if self.pool.size < 2:
            return sources
        plans = [self._plan(source) for source in sources]
        # Every worker this ingest needs is started here, before the first parse is handed to
        # a thread: forked while the ingest has no other thread, and never started twice.
        items = [item for _, wanted in plans for item in wanted]
        pdf = any(item.name.lower().endswith(".pdf") for item in items)
        self.pool.start(min(len(items), self.pool.size), pdf=pdf)
        return [
            self._source(source, digests, wanted)
            for source, (digests, wanted) in zip(sources, plans, strict=True)
        ]

    def _plan(self, source: Source) -> tuple[dict[str, str | ParseError], list[Item]]:
        """The fingerprints of the source's items, and the items the write path will load."""
        digests = {item.uri: _fingerprint(item) for item in source.items}
        stored = self._stored_hashes([uri for uri, d in digests.items() if isinstance(d, str)])
        wanted = [
            item
            for item in source.items
            if isinstance(digests[item.uri], str) and stored.get(item.uri) != digests[item.uri]
        ]
        return digests, wanted

    def _source(self, source: Source, digests: dict, wanted: list[Item]) -> Source:
        if not wanted:
            return source
        embed = self._embed if self._embedder is not None else None
        ahead = _Ahead(wanted, digests, self._threads, self.ahead, embed)
        items = [
            replace(item, fingerprint=ahead.fingerprint(item), load=ahead.load(item))
            for item in source.items
        ]
        return replace(source, items=items)

    def _embed(self, doc: Document, times: dict[str, float]) -> None:
        """Embed the chunks of `doc` that have no stored vector, into `vectors`."""
        chunks = [embedding_text(doc.title, c.heading, c.text) for c in doc.chunks]
        texts = {text_hash(t): t for t in chunks}
        started = time.perf_counter()
        with self.store.session() as s:
            known = stored_vectors(s, list(texts))
        todo = [h for h in texts if h not in known]
        if todo:
            found = dict(zip(todo, self._embedder.embed([texts[h] for h in todo]), strict=True))
            # Threads add, the write path takes (`pop`): each is one atomic dict operation
            # (D1.update(D2) and D.pop, Python's FAQ on thread safety), so no lock is needed.
            self.vectors.update(found)
        times["embed"] = times.get("embed", 0.0) + time.perf_counter() - started

    def _stored_hashes(self, uris: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self.store.session() as s:
            for start in range(0, len(uris), 500):  # SQLite's bound on parameters
                rows = s.execute(
                    select(DocumentRow.uri, DocumentRow.content_hash).where(
                        DocumentRow.uri.in_(uris[start : start + 500])
                    )
                )
                found.update({uri: digest for uri, digest in rows})
        return found


def _fingerprint(item: Item) -> str | ParseError:
    try:
        return item.fingerprint()
    except ParseError as exc:
        return exc


class _Ahead:
    """The loads of `wanted` (in order), submitted at most `ahead` beyond the last taken."""

    def __init__(
        self, wanted: list[Item], digests: dict, threads: ThreadPoolExecutor, ahead: int, embed
    ):
        self.wanted, self.digests, self.threads, self.ahead = wanted, digests, threads, ahead
        self.embed = embed
        self.position = {item.uri: n for n, item in enumerate(wanted)}
        self.futures: dict[str, Future] = {}
        self.submitted = 0
        self.lock = threading.Lock()
        self._submit(ahead)

    def _submit(self, upto: int) -> None:
        with self.lock:
            while self.submitted < min(upto, len(self.wanted)):
                item = self.wanted[self.submitted]
                digest = self.digests[item.uri]
                self.futures[item.uri] = self.threads.submit(_parse, item, digest, self.embed)
                self.submitted += 1

    def fingerprint(self, item: Item):
        digest = self.digests[item.uri]

        def fingerprint() -> str:
            if isinstance(digest, ParseError):
                raise digest
            return digest

        return fingerprint

    def load(self, item: Item):
        def load(digest: str, timings: dict[str, float]) -> Document:
            future = self.futures.pop(item.uri, None)
            n = self.position.get(item.uri)
            if n is not None:
                self._submit(n + 1 + self.ahead)
            if future is None or digest != self.digests[item.uri]:
                return item.load(digest, timings)  # not parsed ahead: parse it now
            doc, times, error = future.result()
            for stage, seconds in times.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            if error is not None:
                raise error
            return doc

        return load


def _parse(
    item: Item, digest: str, embed=None
) -> tuple[Document | None, dict[str, float], Exception | None]:
    times: dict[str, float] = {}
    try:
        doc = item.load(digest, times)
    except Exception as exc:  # handed to the write path, which reports it as it always did
        return None, times, exc
    if embed is not None:
        try:
            embed(doc, times)
        except Exception:  # the write path embeds what is missing, and reports its errors
            log.debug("embedding %s ahead failed", item.name, exc_info=True)
    return doc, times, None
