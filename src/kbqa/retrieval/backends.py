"""Where dense search runs, chosen by the settings string `vector_backend` in one place
(`make_vector_backend`): "faiss" (a FAISS file under HOME, flat or IVF, searched in memory) or
"pgvector" (an HNSW index in the shared PostgreSQL). Every backend offers the same few verbs:
an index for the write path, a rebuild from stored embeddings, a snapshot for the read path, a
factory for Spark executors that write, and what `kbqa status` shows."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kbqa.retrieval.index import IndexChoice, VectorIndex, open_vector_index, rebuild_vector_index
from kbqa.retrieval.snapshot import Snapshot, build_snapshot
from kbqa.settings import Settings
from kbqa.store import Store

# The settings a backend (and the snapshots it builds) reads: a change needs it rebuilt.
READS = frozenset(
    {
        "vector_backend",
        "lexical_backend",
        "pgvector_ef_search",
        "vector_index",
        "vector_index_flat_max",
        "bm25_stemmer",
        "device",
        "home",
        "database_url",
    }
)


class VectorBackend:
    """The base every vector backend implements (txtai's ANN base, for a knowledge base)."""

    use_gpu = False  # FAISS only: search a copy on the GPU
    choice: IndexChoice | None = None  # FAISS only: flat or IVF, by size

    def __init__(self, store: Store, settings: Settings):
        self.store, self.settings = store, settings

    @property
    def lexical_dir(self) -> Path:
        return self.settings.home / "bm25"

    def writable(self, dim: int) -> Any:
        """An index for the write path, in step with the database; never the published one."""
        raise NotImplementedError

    def rebuilt(self, dim: int) -> Any:
        """An index made again from every stored embedding (no re-embedding)."""
        raise NotImplementedError

    def executor_index(self, dim: int) -> Callable[[Store], Any] | None:
        """How a Spark executor that writes builds this index over its own store (None: the
        executors write no index; the driver's run fills it from the stored embeddings)."""
        return None

    def describe(self, index: Any | None, dim: int) -> dict:
        """`index_vectors` and `index` for `kbqa status` (`index`: the published one, if any)."""
        raise NotImplementedError

    def snapshot(self, dim: int, index: Any | None = None) -> Snapshot:
        """A snapshot of the database now, over `index` (which the snapshot then owns) or the
        backend's own."""
        s = self.settings
        return build_snapshot(
            self.store,
            s.index_path,
            self.lexical_dir,
            dim,
            s.bm25_stemmer,
            self.use_gpu,
            index=index if index is not None else self._snapshot_index(dim),
            choice=self.choice,
            lexical=self._lexical(),
        )

    def _snapshot_index(self, dim: int) -> Any | None:
        return None  # the snapshot loads the saved index file

    def _lexical(self) -> Any | None:
        return None  # BM25, built or loaded by the snapshot


class FaissBackend(VectorBackend):
    """A FAISS file under HOME (flat or IVF by size), loaded and searched in memory."""

    def __init__(self, store: Store, settings: Settings):
        super().__init__(store, settings)
        self.use_gpu = settings.device in ("auto", "cuda")
        self.choice = IndexChoice(settings.vector_index, settings.vector_index_flat_max)

    def writable(self, dim: int) -> VectorIndex:
        s = self.settings
        return open_vector_index(self.store, s.index_path, dim, self.use_gpu, self.choice)

    def rebuilt(self, dim: int) -> VectorIndex:
        return rebuild_vector_index(self.store, self.settings.index_path, dim, self.choice)

    def describe(self, index: VectorIndex | None, dim: int) -> dict:
        if index is None:
            index = VectorIndex.load(self.settings.index_path, dim)
        described = index.describe()
        return {"index_vectors": described.pop("vectors"), "index": described}


class PgVectorBackend(VectorBackend):
    """A `vector` column with an HNSW index in the PostgreSQL of database_url; no FAISS copy:
    the snapshot only holds the chunks' metadata (and BM25, unless full-text search is the
    lexical side)."""

    def _index(self, dim: int):
        from kbqa.retrieval.pgvector import PgVectorIndex

        return PgVectorIndex(self.store, dim, self.settings.pgvector_ef_search)

    def writable(self, dim: int):
        index = self._index(dim)
        index.repair()
        return index

    def rebuilt(self, dim: int):
        index = self._index(dim)
        index.refill()
        return index

    def executor_index(self, dim: int) -> Callable[[Store], Any]:
        from kbqa.retrieval.pgvector import PgVectorIndex

        return partial(PgVectorIndex, dim=dim, ef_search=self.settings.pgvector_ef_search)

    def describe(self, index: Any | None, dim: int) -> dict:
        if index is None and not self.store.get_meta("embedding_dim"):
            return {"index_vectors": 0, "index": {"kind": "pgvector"}}
        index = index if index is not None else self._index(dim)
        return {"index_vectors": len(index), "index": {"kind": "pgvector"}}

    _snapshot_index = writable

    def _lexical(self):
        if self.settings.lexical_backend != "postgres-fts":
            return None
        from kbqa.retrieval.pgvector import PgFullText

        return PgFullText(self.store)


BACKENDS: dict[str, type[VectorBackend]] = {"faiss": FaissBackend, "pgvector": PgVectorBackend}


def make_vector_backend(store: Store, settings: Settings) -> VectorBackend:
    """The backend the settings string `vector_backend` names (Settings.validate checked it)."""
    return BACKENDS[settings.vector_backend](store, settings)
