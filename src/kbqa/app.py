"""The composition root: builds the store, models, index, retriever and answerer once, lazily,
from one Settings object. The CLI and the Slack bot talk to this."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import Generator, make_generator
from kbqa.errors import NotIndexedError
from kbqa.retrieval.embedder import Embedder, make_embedder
from kbqa.retrieval.index import VectorIndex
from kbqa.retrieval.indexer import (
    Indexer,
    IngestReport,
    Progress,
    check_embedder,
    open_vector_index,
    rebuild_vector_index,
)
from kbqa.retrieval.retriever import Retriever
from kbqa.settings import Settings
from kbqa.store import Store
from kbqa.types import Answer


class KnowledgeBase:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ):
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        if embedder is not None:
            self.embedder = embedder
        if generator is not None:
            self.generator = generator

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.db_url)

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return make_embedder(s.embedding_model, s.device, s.embed_batch_size)

    @cached_property
    def generator(self) -> Generator:
        s = self.settings
        return make_generator(s.generator_model, s.models_dir, s.device)

    @cached_property
    def index(self) -> VectorIndex:
        check_embedder(self.store, self.embedder)
        use_gpu = self.settings.device in ("auto", "cuda")
        return open_vector_index(self.store, self.settings.index_path, self.embedder.dim, use_gpu)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.embedder, self.index)

    def ingest(self, paths: list[Path], progress: Progress | None = None) -> IngestReport:
        indexer = Indexer(self.store, self.embedder, self.index, self.settings)
        return indexer.ingest(paths, progress)

    def ask(self, question: str, k: int | None = None, extractive: bool = False) -> Answer:
        self.require_content()
        generator = None if extractive else self.generator
        return Answerer(self.retriever, generator, self.settings).answer(question, k, extractive)

    def require_content(self) -> None:
        if self.store.counts()["chunks"] == 0:
            raise NotIndexedError("the knowledge base is empty: run `kbqa ingest PATH` first")

    def reindex(self) -> int:
        """Rebuild the vector index from stored embeddings; returns its size."""
        dim = int(self.store.get_meta("embedding_dim") or 0)
        if not dim:
            raise NotIndexedError("nothing to reindex: run `kbqa ingest PATH` first")
        index = rebuild_vector_index(self.store, self.settings.index_path, dim)
        self.__dict__["index"] = index
        return len(index)

    def status(self) -> dict:
        """Counts, models, index size and the last ingest run."""
        index_path = self.settings.index_path
        dim = int(self.store.get_meta("embedding_dim") or 1)
        info = {
            "home": str(self.settings.home),
            "database": self.settings.db_url,
            **self.store.counts(),
            "embedding_model": self.store.get_meta("embedding_model")
            or self.settings.embedding_model,
            "generator_model": self.settings.generator_model,
            "index_vectors": len(VectorIndex.load(index_path, dim)) if index_path.exists() else 0,
            "index_bytes": index_path.stat().st_size if index_path.exists() else 0,
            "last_run": None,
        }
        run = self.store.last_run()
        if run is not None:
            stats = run.stats or {}
            info["last_run"] = {
                "started_at": run.started_at.isoformat(timespec="seconds"),
                "status": run.status,
                "roots": run.roots,
                **{k: stats.get(k, 0) for k in ("added", "updated", "unchanged", "removed")},
                "failed": len(stats.get("failed", [])),
                "chunks": stats.get("chunks", 0),
                "seconds": round(stats.get("seconds", 0.0), 1),
            }
        return info
