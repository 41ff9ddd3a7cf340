"""BM25 over the stored chunks (bm25s), rebuilt from the database whenever its chunks change,
so it is always in step with the vector index (both follow the database)."""

from __future__ import annotations

import logging

import numpy as np
from sqlalchemy import func, select

from kbqa.store import ChunkRow, DocumentRow, Store

log = logging.getLogger(__name__)


class LexicalIndex:
    def __init__(self, store: Store):
        self.store = store
        self._state: tuple | None = None
        self._bm25 = None
        self._ids = np.zeros(0, dtype=np.int64)

    def _fingerprint(self) -> tuple:
        with self.store.session() as s:
            return tuple(
                s.execute(
                    select(func.count(ChunkRow.id), func.max(ChunkRow.id), func.sum(ChunkRow.id))
                ).one()
            )

    def _ensure(self) -> None:
        state = self._fingerprint()
        if state == self._state:
            return
        import bm25s  # imported here: it costs a second that dense-only use never pays

        with self.store.session() as s:
            rows = s.execute(
                select(ChunkRow.id, DocumentRow.title, ChunkRow.heading, ChunkRow.text)
                .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
                .order_by(ChunkRow.id)
            ).all()
        self._ids = np.array([r[0] for r in rows], dtype=np.int64)
        self._bm25 = None
        if rows:
            texts = [f"{title}\n{heading}\n{text}" for _, title, heading, text in rows]
            tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)
        self._state = state
        log.debug("BM25 index rebuilt over %d chunks", len(rows))

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, BM25 scores) of the k best chunks with a positive score."""
        self._ensure()
        if self._bm25 is None or not len(self._ids):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.ids or not tokens.ids[0]:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        k = min(k, len(self._ids))
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False)
        keep = scores[0] > 0
        return self._ids[docs[0][keep]], scores[0][keep].astype(np.float32)
