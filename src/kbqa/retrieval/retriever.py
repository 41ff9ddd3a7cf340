"""The retriever: a question in, scored hits (chunk, document, heading path) out."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from kbqa.clock import parse_time
from kbqa.ingest.pipeline import embedding_text
from kbqa.retrieval.embedder import Embedder
from kbqa.retrieval.fusion import NORMALISATION, convex, reciprocal_rank
from kbqa.retrieval.index import VectorIndex
from kbqa.retrieval.lexical import LexicalIndex
from kbqa.retrieval.rerank import Reranker
from kbqa.retrieval.snapshot import Snapshot
from kbqa.types import Hit


class Retriever:
    """Dense (FAISS), lexical (BM25) or hybrid retrieval, optionally re-scored by a reranker.
    Hits are ordered by the chosen method, but `Hit.score` is always the cosine similarity to
    the query, so thresholds mean the same whatever the method.

    It searches a search snapshot: `snapshots` is one, or a function returning the current one
    (each search then reads one snapshot throughout). `pinned()` gives a copy bound to the
    current snapshot, for a question whose later steps must see what its search saw."""

    def __init__(
        self,
        snapshots: Snapshot | Callable[[], Snapshot],
        embedder: Embedder,
        mode: str = "dense",
        fusion: str = "rrf",
        alpha: float = 0.5,
        rrf_k: int = 60,
        reranker: Reranker | None = None,
        rerank_depth: int = 20,
        recency_tie: float = 0.0,
    ):
        self._snapshots = snapshots
        self.embedder = embedder
        self.mode, self.fusion, self.alpha, self.rrf_k = mode, fusion, alpha, rrf_k
        self.reranker, self.rerank_depth = reranker, rerank_depth
        self.recency_tie = recency_tie
        self._lexical: LexicalIndex | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshots if isinstance(self._snapshots, Snapshot) else self._snapshots()

    def pinned(self) -> Retriever:
        """This retriever, bound to the snapshot that is current now."""
        pinned = copy.copy(self)
        pinned._snapshots = self.snapshot
        return pinned

    @property
    def index(self) -> VectorIndex:
        return self.snapshot.index

    @property
    def lexical(self) -> LexicalIndex:
        """The snapshot's BM25 index, unless another was set (to compare stemmers, say)."""
        return self._lexical if self._lexical is not None else self.snapshot.lexical

    @lexical.setter
    def lexical(self, value: LexicalIndex | None) -> None:
        # Setting back the snapshot's own index clears the override, so later swaps show.
        self._lexical = None if value is self.snapshot.lexical else value

    def search(
        self, query: str, k: int = 5, allow: Callable[[Hit], bool] | None = None
    ) -> list[Hit]:
        """The k best chunks for the query, best first; only those `allow` accepts (a `Scope`
        from retrieval/access.py, or any predicate over a hit), and no two that are
        near-duplicates of each other. The filter comes first: only allowed chunks are
        searched, fused, reranked and collapsed, so a chunk the audience may not see can
        neither push an allowed one below the cut-off nor erase it as its duplicate."""
        if not isinstance(self._snapshots, Snapshot):
            return self.pinned().search(query, k, allow)
        restricted = allow is not None and not getattr(allow, "everything", False)
        # A backend that filters in its own store (pgvector: SQL WHERE) is given the filter
        # itself; the others search only the allowed chunk ids.
        allowed = None
        if restricted and not (self._prefilters(self.index) and self._prefilters(self.lexical)):
            allowed = self.snapshot.allowed_ids(allow)
            if not len(allowed):
                return []
        size = len(self.index) if allowed is None else len(allowed)
        if size == 0:
            return []
        vector = self.embedder.embed([query])
        want = max(k, self.rerank_depth) if self.reranker is not None else k
        fetch = max(4 * want, 20)
        while True:
            ranked = self._ranked(
                query, vector, fetch, allowed, size, allow if restricted else None
            )
            if restricted:  # what a store filtered is checked again here: it costs little
                ranked = [h for h in ranked if allow(h)]
            hits = _collapse(ranked)
            # Collapsing may leave too few: look further down the ranking, up to everything.
            if len(hits) >= want or fetch >= size:
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

    @staticmethod
    def _prefilters(backend) -> bool:
        return bool(getattr(backend, "prefilters", False))

    def _ranked(
        self,
        query: str,
        vector: np.ndarray,
        fetch: int,
        allowed: np.ndarray | None = None,
        size: int | None = None,
        allow: Callable[[Hit], bool] | None = None,
    ) -> list[Hit]:
        fetch = min(fetch, len(self.index) if size is None else size)
        dense_filter = allow if self._prefilters(self.index) else allowed
        if self.mode == "dense":
            scores, ids = self.index.search(vector, fetch, dense_filter)
            keep = ids[0] >= 0
            return self.hits(ids[0][keep], scores[0][keep])
        lexical_filter = allow if self._prefilters(self.lexical) else allowed
        lexical_ids = [int(i) for i in self.lexical.search(query, fetch, lexical_filter)[0]]
        if self.mode == "bm25":
            order = lexical_ids
            cosine = self._cosines(order, vector)
        else:
            _, ids = self.index.search(vector, fetch, dense_filter)
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
                    NORMALISATION[self.fusion],
                )
            order = sorted(fused, key=lambda i: (-fused[i], i))
            order = self._newest_first_in_ties(order, fused)
        if not order:
            return []
        return self.hits(np.array(order), np.array([cosine.get(i, 0.0) for i in order]))

    def _newest_first_in_ties(self, order: list[int], fused: dict[int, float]) -> list[int]:
        """Chunks whose fused scores lie within `recency_tie` of the first of their run, newest
        source first (its own update time); the order as it was where that is 0 (the default)."""
        if self.recency_tie <= 0 or len(order) < 2:
            return order
        chunks = self.snapshot.chunks

        def newest(i: int) -> float:
            doc = chunks[i].document if i in chunks else None
            if doc is None:
                return 0.0
            meta = doc.meta
            return -(
                parse_time(meta.get("updated_at")) or parse_time(meta.get("last_ts")) or doc.mtime
            )

        out, run = [], [order[0]]
        for i in order[1:]:
            if fused[run[0]] - fused[i] <= self.recency_tie:
                run.append(i)
            else:
                out += sorted(run, key=newest)  # stable: equal times keep their rank
                run = [i]
        return out + sorted(run, key=newest)

    def _cosines(self, ids: list[int], vector: np.ndarray) -> dict[int, float]:
        if not ids:
            return {}
        stored_ids, vectors = self.snapshot.vectors(ids)
        return dict(zip(stored_ids.tolist(), (vectors @ vector[0]).tolist(), strict=True))

    def vectors(self, hits: list[Hit]) -> np.ndarray:
        """The stored embeddings of the hits' chunks, in order."""
        ids, vectors = self.snapshot.vectors([h.chunk_id for h in hits])
        row = {int(i): n for n, i in enumerate(ids)}
        return vectors[[row[h.chunk_id] for h in hits]]

    def hits(
        self, ids: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
    ) -> list[Hit]:
        """Hits for chunk ids with their scores, in order (unknown ids left out)."""
        return self.snapshot.hits(ids, scores)


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
