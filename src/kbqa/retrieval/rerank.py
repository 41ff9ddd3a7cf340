"""An optional second stage: re-score the retriever's top candidates with a stronger model,
a cross-encoder when the model is one, else a bi-encoder's cosine similarity."""

from __future__ import annotations

from functools import cached_property
from typing import Protocol

import numpy as np

from kbqa.errors import ModelError
from kbqa.retrieval.device import require_torch, torch_device
from kbqa.settings import PACKAGED_EMBEDDER


class Reranker(Protocol):
    def score(self, query: str, passages: list[str]) -> np.ndarray: ...


class CrossEncoderReranker:
    """Reads query and passage together: the strongest kind of reranker, when one is at hand."""

    def __init__(self, location: str, device: str = "auto"):
        require_torch("sentence_transformers")
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(location, device=torch_device(device))

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict([(query, p) for p in passages], convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(passages))


class BiEncoderReranker:
    """Cosine similarity under another (larger) sentence-transformers model than the index's."""

    def __init__(self, location: str, device: str = "auto"):
        require_torch("sentence_transformers")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(location, device=torch_device(device))

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        vectors = self.model.encode(
            [query, *passages], normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors[1:] @ vectors[0], dtype=np.float32)


class LazyReranker:
    """Loads its model on first use, so settings that name a reranker cost nothing until then."""

    def __init__(self, model: str, device: str = "auto"):
        self.name, self.device = model, device

    @cached_property
    def backend(self) -> Reranker:
        return load_reranker(self.name, self.device)

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        return self.backend.score(query, passages)


def make_reranker(model: str, device: str = "auto") -> Reranker | None:
    """The reranker a settings string names (loaded lazily), or None for "" (no reranking)."""
    return LazyReranker(model, device) if model else None


def load_reranker(model: str, device: str = "auto") -> Reranker:
    """Load `model` now: a cross-encoder if its config is a sequence classifier, else a
    bi-encoder. Any failure is one ModelError line."""
    location = model
    if model == PACKAGED_EMBEDDER:
        from kbqa.retrieval.embedder import packaged_embedder_path

        path = packaged_embedder_path()
        location = str(path) if path is not None else model
    try:
        if is_cross_encoder(location):
            return CrossEncoderReranker(location, device)
        return BiEncoderReranker(location, device)
    except Exception as exc:  # transformers and sentence-transformers raise many kinds
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"rerank_model {model!r} cannot be loaded: {reason}") from exc


def is_cross_encoder(location: str) -> bool:
    """Whether the model is a cross-encoder: its transformers config says it classifies
    sequences (a bi-encoder's says it is a bare encoder such as BertModel)."""
    require_torch("transformers")
    from transformers import AutoConfig

    architectures = AutoConfig.from_pretrained(location).architectures or []
    return any(a.endswith("ForSequenceClassification") for a in architectures)
