"""The retriever: a question in, scored hits (chunk, document, heading path) out."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import select

from kbqa.retrieval.embedder import Embedder
from kbqa.retrieval.index import VectorIndex
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Hit


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, index: VectorIndex):
        self.store, self.embedder, self.index = store, embedder, index

    def search(
        self, query: str, k: int = 5, allow: Callable[[Hit], bool] | None = None
    ) -> list[Hit]:
        """The k chunks most similar to the query, best first; only those `allow` accepts."""
        if len(self.index) == 0:
            return []
        vector = self.embedder.embed([query])
        fetch = k if allow is None else k * 4
        while True:
            scores, ids = self.index.search(vector, min(fetch, len(self.index)))
            hits = self.hits(ids[0], scores[0])
            if allow is not None:
                hits = [h for h in hits if allow(h)]
            # Filtering may leave too few: look further down the ranking, up to everything.
            if len(hits) >= k or fetch >= len(self.index):
                return hits[:k]
            fetch *= 4

    def vectors(self, hits: list[Hit]) -> np.ndarray:
        """The stored embeddings of the hits' chunks, in order."""
        ids, vectors = self.store.embeddings(np.array([h.chunk_id for h in hits], dtype=np.int64))
        row = {int(i): n for n, i in enumerate(ids)}
        return vectors[[row[h.chunk_id] for h in hits]]

    def hits(self, ids: np.ndarray, scores: np.ndarray) -> list[Hit]:
        wanted = [int(i) for i in ids if i >= 0]
        with self.store.session() as s:
            rows = s.execute(
                select(ChunkRow, DocumentRow)
                .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
                .where(ChunkRow.id.in_(wanted))
            ).all()
        by_id = {chunk.id: (chunk, doc) for chunk, doc in rows}
        out = []
        for chunk_id, score in zip(ids, scores, strict=True):
            if int(chunk_id) not in by_id:
                continue
            chunk, doc = by_id[int(chunk_id)]
            out.append(
                Hit(
                    chunk_id=chunk.id,
                    score=float(score),
                    text=chunk.text,
                    heading=chunk.heading,
                    uri=doc.uri,
                    title=doc.title,
                    metadata={**(doc.meta or {}), "mtime": doc.mtime},
                )
            )
        return out
