"""The retriever: a question in, scored hits (chunk, document, heading path) out."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
from sqlalchemy import select

from kbqa.retrieval.embedder import Embedder
from kbqa.retrieval.fusion import convex, reciprocal_rank
from kbqa.retrieval.index import VectorIndex
from kbqa.retrieval.lexical import LexicalIndex
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Hit


class Retriever:
    """Dense (FAISS), lexical (BM25) or hybrid retrieval. Hits are ordered by the chosen method,
    but `Hit.score` is always the cosine similarity to the query, so thresholds mean the same
    whatever the method."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        index: VectorIndex,
        mode: str = "dense",
        fusion: str = "rrf",
        alpha: float = 0.5,
    ):
        self.store, self.embedder, self.index = store, embedder, index
        self.mode, self.fusion, self.alpha = mode, fusion, alpha
        self.lexical = LexicalIndex(store)

    def search(
        self, query: str, k: int = 5, allow: Callable[[Hit], bool] | None = None
    ) -> list[Hit]:
        """The k best chunks for the query, best first; only those `allow` accepts, and no two
        that are near-duplicates of each other."""
        if len(self.index) == 0:
            return []
        vector = self.embedder.embed([query])
        fetch = max(4 * k, 20)
        while True:
            hits = _collapse(self._ranked(query, vector, fetch))
            if allow is not None:
                hits = [h for h in hits if allow(h)]
            # Filtering may leave too few: look further down the ranking, up to everything.
            if len(hits) >= k or fetch >= len(self.index):
                return hits[:k]
            fetch *= 4

    def _ranked(self, query: str, vector: np.ndarray, fetch: int) -> list[Hit]:
        fetch = min(fetch, len(self.index))
        if self.mode == "dense":
            scores, ids = self.index.search(vector, fetch)
            return self.hits(ids[0], scores[0])
        lexical_ids, lexical_scores = self.lexical.search(query, fetch)
        if self.mode == "bm25":
            order = [int(i) for i in lexical_ids]
        else:
            scores, ids = self.index.search(vector, fetch)
            dense = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
            lexical = {int(i): float(s) for i, s in zip(lexical_ids, lexical_scores, strict=True)}
            if self.fusion == "rrf":
                fused = reciprocal_rank([list(dense), list(lexical)])
            else:
                fused = convex(dense, lexical, self.alpha)
            order = sorted(fused, key=lambda i: -fused[i])
        if not order:
            return []
        stored_ids, vectors = self.store.embeddings(np.array(order, dtype=np.int64))
        cosine = dict(zip(stored_ids.tolist(), (vectors @ vector[0]).tolist(), strict=True))
        return self.hits(np.array(order), np.array([cosine.get(i, 0.0) for i in order]))

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


def _collapse(hits: list[Hit], threshold: float = 0.9) -> list[Hit]:
    """Drop hits that repeat a better one (the same text ingested twice, a quoted thread)."""
    kept: list[tuple[Hit, set[str]]] = []
    for hit in hits:
        words = set(re.findall(r"\w+", hit.text.lower()))
        if any(
            words and other and len(words & other) / len(words | other) >= threshold
            for _, other in kept
        ):
            continue
        kept.append((hit, words))
    return [hit for hit, _ in kept]
