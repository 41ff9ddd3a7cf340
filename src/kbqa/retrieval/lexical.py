"""BM25 over one fixed set of stored chunks (bm25s).

A LexicalIndex is built once (from the database, or loaded from the files a previous build
saved, memory-mapped) and never changed afterwards, so any number of threads may search it at
once. bm25s cannot add to or remove from an index (every score depends on the corpus's IDF and
mean length), so when the database changes a new one is built beside it, in the snapshot's
background thread, and swapped in with the rest of the search snapshot (retrieval/snapshot.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import select

from kbqa import faults
from kbqa.errors import ConfigError
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.store.db import pid_alive

log = logging.getLogger(__name__)

# Words of two characters or more; identifiers are split at "_" so `sys_path` and `__init__`
# also match "path" and "init" (`\w` alone would keep `sys_path` as one token).
_WORD = re.compile(r"[^\W_]{2,}")
_POINTER = "current.json"


def bm25s_module():
    """bm25s, imported on first use (a dense-only search never pays for it) and without numba:
    bm25s imports numba whenever it is installed (unstructured brings it), ~0.4 s of a cold
    `kbqa ask`, though kbqa runs its numpy backend."""
    if "bm25s" not in sys.modules and "numba" not in sys.modules:
        sys.modules["numba"] = None  # type: ignore[assignment] - `import numba` now fails
        try:
            import bm25s
            import bm25s.stopwords
        finally:
            del sys.modules["numba"]
    import bm25s
    import bm25s.stopwords
    import tqdm

    # bm25s wraps its loops in tqdm even with show_progress=False, and tqdm's first bar starts
    # a monitor thread that lives as long as the process: a later ingest in it then sees a
    # thread running and starts its parse workers from a fork server, not by a fork of itself
    # (ingest/worker.py). kbqa shows no bm25s bar, so the monitor has nothing to watch.
    tqdm.tqdm.monitor_interval = 0
    return bm25s


def make_tokenizer(stemmer: str = "english") -> Callable[[str], list[str]]:
    """Lower-cased words minus English stopwords, Snowball-stemmed in language `stemmer`
    ("" for none). Without PyStemmer it logs a warning and does not stem."""
    stopwords = frozenset(bm25s_module().stopwords.STOPWORDS_EN)
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


def stored_texts(store: Store) -> tuple[np.ndarray, list[str]]:
    """(chunk ids in order, the lexical text of each) of every stored chunk."""
    with store.session() as s:
        rows = s.execute(
            select(ChunkRow.id, DocumentRow.title, ChunkRow.heading, ChunkRow.text)
            .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
            .order_by(ChunkRow.id)
        ).all()
    return np.array([r[0] for r in rows], dtype=np.int64), [lexical_text(*r[1:]) for r in rows]


class LexicalIndex:
    """BM25 scores of a fixed set of chunks. `LexicalIndex(store, stemmer)` builds one over
    every chunk stored now; `from_texts` and `load` build one from other sources."""

    def __init__(self, store: Store | None = None, stemmer: str = "english"):
        ids, texts = stored_texts(store) if store is not None else (np.zeros(0, np.int64), [])
        self._build(ids, texts, stemmer)

    @classmethod
    def from_texts(
        cls, ids: np.ndarray, texts: Sequence[str], stemmer: str = "english"
    ) -> LexicalIndex:
        """An index over the given chunks (ids ascending, with their lexical_text)."""
        index = cls.__new__(cls)
        index._build(np.asarray(ids, dtype=np.int64), texts, stemmer)
        return index

    def _build(self, ids: np.ndarray, texts: Sequence[str], stemmer: str) -> None:
        self.stemmer = stemmer
        self.tokenize = make_tokenizer(stemmer)
        self._ids = ids
        self._bm25 = None
        self._document_frequency: dict[str, int] = {}
        if len(texts):
            bm25s = bm25s_module()

            tokens = [self.tokenize(text) for text in texts]
            self._document_frequency = dict(Counter(t for doc in tokens for t in set(doc)))
            bm25 = bm25s.BM25(backend="numpy")
            # An empty token lets a chunk with no indexable word still have a row.
            bm25.index([t or [""] for t in tokens], show_progress=False)
            self._bm25 = bm25
        log.debug("BM25 index built over %d chunks", len(ids))

    @property
    def ids(self) -> np.ndarray:
        """The chunk ids indexed, ascending."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    # -- persistence: HOME/bm25/<name>/ folders and a pointer file naming the current one ----

    def save(self, folder: Path, name: str) -> None:
        """Write the index to folder/name and point folder/current.json at it (atomically);
        older saved versions are removed. OSError when it cannot (a full disk), with the
        saved index before it left in place."""
        target = folder / name
        me = f"{os.getpid()}.{threading.get_ident()}"
        tmp = folder / f".{name}.{me}.tmp"
        folder.mkdir(parents=True, exist_ok=True)
        _remove_orphans(folder)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            if self._bm25 is not None:
                self._bm25.save(str(tmp), show_progress=False)
            np.save(tmp / "ids.npy", self._ids)
            meta = {
                "stemmer": self.stemmer,
                "document_frequency": self._document_frequency,
                # What load checks: a damaged file means a rebuild, never wrong scores.
                "sha256": {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()},
            }
            (tmp / "kbqa.json").write_text(json.dumps(meta))
            faults.point("bm25-save")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if target.exists() and not _intact(target):
            shutil.rmtree(target, ignore_errors=True)  # a damaged earlier save of this build
        try:
            os.replace(tmp, target)
        except OSError:  # another process saved the same build first
            shutil.rmtree(tmp, ignore_errors=True)
        faults.point("bm25-pointer")
        pointer = folder / f".{_POINTER}.{me}.tmp"
        try:
            pointer.write_text(json.dumps({"name": name}))
            os.replace(pointer, folder / _POINTER)
        except BaseException:
            pointer.unlink(missing_ok=True)
            raise
        for old in folder.iterdir():
            # Leave other processes' temporary folders alone; a reader of an old version that
            # loses it falls back to a rebuild.
            if old.is_dir() and old.name != name and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, ids: np.ndarray, stemmer: str) -> LexicalIndex | None:
        """The saved index over exactly these chunk ids with this stemmer, or None (also
        when a saved file is missing or damaged)."""
        try:
            name = json.loads((folder / _POINTER).read_text())["name"]
            saved = folder / name
            meta = json.loads((saved / "kbqa.json").read_text())
            if not _intact(saved, meta):
                raise ValueError("a file does not match its SHA-256")
            saved_ids = np.load(saved / "ids.npy")
            if meta["stemmer"] != stemmer or not np.array_equal(saved_ids, ids):
                return None
            index = cls.__new__(cls)
            index.stemmer = stemmer
            index.tokenize = make_tokenizer(stemmer)
            index._ids = saved_ids.astype(np.int64)
            index._document_frequency = meta["document_frequency"]
            index._bm25 = None
            if len(saved_ids):
                bm25s = bm25s_module()
                # Memory-mapped: the score arrays are paged in as queries touch them, so a
                # start costs no read of the whole index (and processes share the pages).
                index._bm25 = bm25s.BM25.load(str(saved), mmap=True, show_progress=False)
            return index
        except ConfigError:
            raise
        except Exception as exc:  # whatever a damaged file makes numpy or bm25s raise
            log.debug("no usable saved BM25 index in %s: %s", folder, exc)
            return None

    # -- searching ------------------------------------------------------------------------

    def coverage(self, query: str, text: str) -> float:
        """The IDF-weighted share of the query's terms that `text` contains. A question whose
        rare words (names, identifiers) the best passage lacks is rarely answered by it, and a
        word the corpus never uses weighs the most."""
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
        if self._bm25 is None:
            return None
        known = self._bm25.get_tokens_ids(self.tokenize(query))
        if not known:
            return None
        return self._bm25.get_scores(known)

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, BM25 scores) of the k best chunks with a positive score, best first;
        with `allowed` (chunk ids), only among those."""
        scores = self._scores(query)
        if scores is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if allowed is not None:
            scores = np.where(_members(self._ids, allowed), scores, 0.0)
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


def _members(ids: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """ids' membership of `allowed` (np.isin, but one pass over a bitmap of chunk ids: at 1M
    chunks it sorted both sides for every filtered search)."""
    if not len(allowed):
        return np.zeros(len(ids), dtype=bool)
    top = int(allowed.max())
    member = np.zeros(top + 1, dtype=bool)
    member[allowed] = True
    return (ids <= top) & member[np.minimum(ids, top)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _intact(saved: Path, meta: dict | None = None) -> bool:
    """Whether every file of a saved index matches the SHA-256 recorded with it."""
    try:
        meta = meta or json.loads((saved / "kbqa.json").read_text())
        return all(_sha256(saved / f) == d for f, d in meta.get("sha256", {}).items())
    except (OSError, ValueError, AttributeError):
        return False


_TEMPORARY = re.compile(r"\.(?:.+)\.(\d+)\.\d+\.tmp")


def _remove_orphans(folder: Path) -> None:
    """Temporary folders and pointers left by saves of processes that were killed."""
    for old in folder.iterdir():
        match = _TEMPORARY.fullmatch(old.name)
        if match and not pid_alive(int(match.group(1))):
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
