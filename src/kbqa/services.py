"""What a knowledge base is built of, from its settings: the store, the models (models.py), the
vector backend (retrieval/backends.py), the search snapshots and the retriever, each built once
on first use. New settings give new services, keeping what no changed setting was read for."""

from __future__ import annotations

from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Any

from kbqa.assistant.cache import AnswerCache
from kbqa.assistant.generator import Generator, llama_cpp_build
from kbqa.ingest.pipeline import check_embedder
from kbqa.models import READS as MODEL_READS
from kbqa.models import Models
from kbqa.redact import mask_url
from kbqa.retrieval import backends
from kbqa.retrieval.embedder import Embedder
from kbqa.retrieval.retriever import Retriever
from kbqa.retrieval.snapshot import Snapshots, generation
from kbqa.settings import Settings
from kbqa.store import Store, queries

# What the store, the backend, the snapshots and the retriever are built from: a change to one
# of them rebuilds those four (the models are kept unless a setting of theirs changed).
READS = backends.READS | {
    "database_busy_seconds",
    "snapshot_check_seconds",
    *("retrieval_mode", "fusion", "fusion_alpha", "rrf_k", "rerank_depth", "recency_tie"),
    *(name for reads in MODEL_READS.values() for name in reads),
}
_BUILT = ("store", "backend", "snapshots", "retriever")


class Services:
    """The services of one knowledge base under one set of settings."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        models: Models | None = None,
    ):
        self.settings = settings
        self.models = models or Models(settings, self._stored_embedder, embedder, generator)

    def _stored_embedder(self) -> str | None:
        # With backend "auto" a knowledge base keeps the backend it was embedded with.
        return self.store.get_meta("embedding_model")

    def renewed(self, settings: Settings) -> Services:
        """The services for `settings`, sharing with these what no changed setting touches."""
        changed = {
            f.name
            for f in fields(Settings)
            if getattr(self.settings, f.name) != getattr(settings, f.name)
        }
        services = Services(settings)
        services.models = self.models.renewed(settings, changed, services._stored_embedder)
        if not changed & READS:
            services.__dict__.update({k: v for k, v in self.__dict__.items() if k in _BUILT})
        return services

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.db_url, self.settings.database_busy_seconds)

    @cached_property
    def backend(self) -> backends.VectorBackend:
        return backends.make_vector_backend(self.store, self.settings)

    def dim(self) -> int:
        """The stored vectors' dimension (the embedder's before the first ingest)."""
        return int(self.store.get_meta("embedding_dim") or 0) or self.models.embedder.dim

    @cached_property
    def snapshots(self) -> Snapshots:
        return Snapshots(
            lambda: self.backend.snapshot(self.dim()),
            lambda current: generation(self.store) != current.generation,
            self.settings.snapshot_check_seconds,
        )

    @cached_property
    def retriever(self) -> Retriever:
        """The retriever over the current snapshot; `retriever.pinned()` holds one snapshot."""
        embedder = self.models.embedder
        check_embedder(self.store, embedder)
        s = self.settings
        return Retriever(
            lambda: self.snapshots.current(),
            embedder,
            s.retrieval_mode,
            s.fusion,
            s.fusion_alpha,
            rrf_k=s.rrf_k,
            reranker=self.models.reranker,
            rerank_depth=s.rerank_depth,
            recency_tie=s.recency_tie,
        )

    @cached_property
    def answers(self) -> AnswerCache:
        """Answers kept for the same question again. Never carried over by renewed(): any
        new setting (a generator, an answer style) may change the answers."""
        return AnswerCache.for_settings(self.settings)

    def publish(self, index: Any) -> None:
        """Build a snapshot over `index` (filled by the write path) and make it current."""
        self.snapshots.publish(self.backend.snapshot(self.dim(), index))

    def status(self) -> dict:
        """Counts, models, index size, the current snapshot and the last ingest run."""
        s, store, current = self.settings, self.store, self.snapshots.peek()
        info = {
            "home": str(Path(s.home).resolve()),  # "where is my index?": never relative
            "database": mask_url(s.db_url),
            **store.counts(),
            "embedding_model": store.get_meta("embedding_model") or s.embedding_model,
            "generator_model": s.generator_model,
            # What the installed llama.cpp was built for (scripts/native-llama.sh changes it).
            "llama_cpp": llama_cpp_build(),
            **self.backend.describe(
                current.index if current is not None else None,
                int(store.get_meta("embedding_dim") or 1),
            ),
            "index_bytes": s.index_path.stat().st_size if s.index_path.exists() else 0,
            # Every root ingested so far, not only the last run's: what the index holds.
            "sources": [
                {"root": src["root"], "kind": src["kind"], "documents": src["documents"]}
                for src in queries.sources(store)
            ],
            "last_run": queries.last_run(store),
        }
        if current is not None:
            info["snapshot"] = {
                "chunks": len(current),
                "built_at": round(current.built_at, 3),
                "builds": self.snapshots.builds,
            }
        return info
