"""The retriever: a question in, scored hits (chunk, document, heading path) out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from sqlalchemy import select

from kbqa.retrieval.embedder import Embedder
from kbqa.retrieval.fusion import convex, reciprocal_rank
from kbqa.retrieval.index import VectorIndex
from kbqa.retrieval.indexer import embedding_text
from kbqa.retrieval.lexical import LexicalIndex
from kbqa.retrieval.rerank import Reranker
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Hit


class Retriever:
    """Dense (FAISS), lexical (BM25) or hybrid retrieval, optionally re-scored by a reranker.
    Hits are ordered by the chosen method, but `Hit.score` is always the cosine similarity to
    the query, so thresholds mean the same whatever the method."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        index: VectorIndex,
        mode: str = "dense",
        fusion: str = "rrf",
        alpha: float = 0.5,
        rrf_k: int = 60,
        stemmer: str = "english",
        reranker: Reranker | None = None,
        rerank_depth: int = 20,
    ):
        self.store, self.embedder, self.index = store, embedder, index
        self.mode, self.fusion, self.alpha, self.rrf_k = mode, fusion, alpha, rrf_k
        self.reranker, self.rerank_depth = reranker, rerank_depth
        self.lexical = LexicalIndex(store, stemmer)

    def search(
        self, query: str, k: int = 5, allow: Callable[[Hit], bool] | None = None
    ) -> list[Hit]:
        """The k best chunks for the query, best first; only those `allow` accepts, and no two
        that are near-duplicates of each other."""
        if len(self.index) == 0:
            return []
        vector = self.embedder.embed([query])
        want = max(k, self.rerank_depth) if self.reranker is not None else k
        fetch = max(4 * want, 20)
        while True:
            hits = _collapse(self._ranked(query, vector, fetch))
            if allow is not None:
                hits = [h for h in hits if allow(h)]
            # Filtering may leave too few: look further down the ranking, up to everything.
            if len(hits) >= want or fetch >= len(self.index):
                break
            fetch *= 4
        if self.reranker is not None:
            hits = self._rerank(query, hits)
        return hits[:k]

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The top `rerank_depth` hits in the reranker's order (its score in metadata), then the
        rest unchanged; Hit.score stays the cosine."""
        head = hits[: self.rerank_depth]
        passages = [embedding_text(h.title, h.heading, h.text) for h in head]
        scores = self.reranker.score(query, passages)
        order = sorted(range(len(head)), key=lambda n: -scores[n])  # stable: ties keep rank
        reranked = [
            replace(head[n], metadata={**head[n].metadata, "rerank_score": float(scores[n])})
            for n in order
        ]
        return reranked + hits[len(head) :]

    def _ranked(self, query: str, vector: np.ndarray, fetch: int) -> list[Hit]:
        fetch = min(fetch, len(self.index))
        if self.mode == "dense":
            scores, ids = self.index.search(vector, fetch)
            return self.hits(ids[0], scores[0])
        lexical_ids = [int(i) for i in self.lexical.search(query, fetch)[0]]
        if self.mode == "bm25":
            order = lexical_ids
            cosine = self._cosines(order, vector)
        else:
            _, ids = self.index.search(vector, fetch)
            dense_ids = [int(i) for i in ids[0] if i >= 0]
            candidates = list(dict.fromkeys(dense_ids + lexical_ids))
            cosine = self._cosines(candidates, vector)
            if self.fusion == "rrf":
                # Weights 2a and 2(1 - a), so a = 0.5 is plain reciprocal-rank fusion.
                weights = [2 * self.alpha, 2 * (1 - self.alpha)]
                fused = reciprocal_rank([dense_ids, lexical_ids], self.rrf_k, weights)
            else:
                # Every candidate gets its true score on both sides (cosine from the stored
                # vector, BM25 from the lexical index) rather than 0 where one list missed it.
                bm25 = self.lexical.score(query, np.array(candidates, dtype=np.int64))
                fused = convex(
                    {i: cosine[i] for i in candidates},
                    dict(zip(candidates, bm25.tolist(), strict=True)),
                    self.alpha,
                )
            order = sorted(fused, key=lambda i: (-fused[i], i))
        if not order:
            return []
        return self.hits(np.array(order), np.array([cosine.get(i, 0.0) for i in order]))

    def _cosines(self, ids: list[int], vector: np.ndarray) -> dict[int, float]:
        if not ids:
            return {}
        stored_ids, vectors = self.store.embeddings(np.array(ids, dtype=np.int64))
        return dict(zip(stored_ids.tolist(), (vectors @ vector[0]).tolist(), strict=True))

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
