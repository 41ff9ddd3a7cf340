"""BM25 over the stored chunks (bm25s), rebuilt from the database whenever its chunks change,
so it is always in step with the vector index (both follow the database)."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select

from kbqa.errors import ConfigError
from kbqa.store import ChunkRow, DocumentRow, Store

log = logging.getLogger(__name__)

# Words of two characters or more; identifiers are split at "_" so `sys_path` and `__init__`
# also match "path" and "init" (`\w` alone would keep `sys_path` as one token).
_WORD = re.compile(r"[^\W_]{2,}")


def make_tokenizer(stemmer: str = "english") -> Callable[[str], list[str]]:
    """Lower-cased words minus English stopwords, Snowball-stemmed in language `stemmer`
    ("" for none). Without PyStemmer it logs a warning and does not stem."""
    from bm25s.stopwords import STOPWORDS_EN

    stopwords = frozenset(STOPWORDS_EN)
    stem: Callable[[list[str]], list[str]] = list
    if stemmer:
        try:
            import Stemmer  # PyStemmer: Snowball in C, so indexing stays fast
        except ImportError:
            log.warning("PyStemmer is not installed (pip install PyStemmer): BM25 will not stem")
        else:
            if stemmer not in Stemmer.algorithms():
                raise ConfigError(
                    f"setting 'bm25_stemmer' must be a Snowball language such as english, "
                    f"or empty; got {stemmer!r}"
                )
            stem = Stemmer.Stemmer(stemmer).stemWords

    def tokenize(text: str) -> list[str]:
        return stem([w for w in _WORD.findall(text.lower()) if w not in stopwords])

    return tokenize


def lexical_text(title: str, heading: str, text: str) -> str:
    """What BM25 indexes for a chunk: its document title, heading path and text."""
    return f"{title}\n{heading}\n{text}"


class LexicalIndex:
    def __init__(self, store: Store, stemmer: str = "english"):
        self.store = store
        self.tokenize = make_tokenizer(stemmer)
        self._state: tuple | None = None
        self._bm25 = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._document_frequency: Counter[str] = Counter()

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
            tokens = [
                self.tokenize(lexical_text(title, heading, text))
                for _, title, heading, text in rows
            ]
            self._document_frequency = Counter(t for doc in tokens for t in set(doc))
            self._bm25 = bm25s.BM25()
            # An empty token lets a chunk with no indexable word still have a row.
            self._bm25.index([t or [""] for t in tokens], show_progress=False)
        self._state = state
        log.debug("BM25 index rebuilt over %d chunks", len(rows))

    def coverage(self, query: str, text: str) -> float:
        """The IDF-weighted share of the query's terms that `text` contains. A question whose
        rare words (names, identifiers) the best passage lacks is rarely answered by it, and a
        word the corpus never uses weighs the most."""
        self._ensure()
        terms = set(self.tokenize(query))
        count = len(self._ids)
        weights = {
            t: math.log((count + 1) / (self._document_frequency.get(t, 0) + 0.5)) for t in terms
        }
        total = sum(weights.values())
        if total <= 0:
            return 0.0
        present = set(self.tokenize(text))
        return sum(w for t, w in weights.items() if t in present) / total

    def _scores(self, query: str) -> np.ndarray | None:
        """The BM25 score of every chunk (in self._ids order), or None if no query word is known."""
        self._ensure()
        if self._bm25 is None:
            return None
        known = self._bm25.get_tokens_ids(self.tokenize(query))
        if not known:
            return None
        return self._bm25.get_scores(known)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, BM25 scores) of the k best chunks with a positive score, best first."""
        scores = self._scores(query)
        if scores is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        # Ties broken by chunk id, so the ranking is the same from run to run.
        top = top[np.lexsort((self._ids[top], -scores[top]))]
        top = top[scores[top] > 0]
        return self._ids[top], scores[top].astype(np.float32)

    def score(self, query: str, ids: np.ndarray) -> np.ndarray:
        """BM25 scores of the given chunk ids (0 for an unknown id or no known query word)."""
        ids = np.asarray(ids, dtype=np.int64)
        scores = self._scores(query)
        if scores is None or not len(ids):
            return np.zeros(len(ids), dtype=np.float32)
        rows = np.clip(np.searchsorted(self._ids, ids), 0, len(self._ids) - 1)
        found = self._ids[rows] == ids
        return np.where(found, scores[rows], 0.0).astype(np.float32)
