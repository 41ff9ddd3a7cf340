"""The models a knowledge base runs (embedder, generator, reranker), each built once from the
settings on first use and called through a lock."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from functools import cached_property, partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kbqa.assistant.generator import Generator, make_generator
from kbqa.assistant.models import PACKAGED
from kbqa.assistant.queue import GenerationQueue, Queued
from kbqa.errors import ModelError
from kbqa.retrieval.embedder import Embedder, make_embedder
from kbqa.settings import Settings

# The settings each model is built from: a change to one of them needs that model rebuilt.
READS = {
    "embedder": frozenset(
        {
            "embedding_model",
            "device",
            "embed_batch_size",
            "embed_threads",
            "embedding_backend",
            "model_cache",
        }
    ),
    "generator": frozenset(
        {
            "generator_model",
            "home",
            "device",
            "model_cache",
            "generator_backend",
            "generator_threads",
            "generator_precision",
            "generator_slots",
            "generator_draft",
        }
    ),
    "reranker": frozenset({"rerank_model", "device"}),
    "queue": frozenset({"generator_slots", "queue_limit", "queue_retry_seconds"}),
}


class Models:
    """The models for one set of settings; `embedder` and `generator` may be given (a test's
    fake, or one loaded elsewhere) instead of built."""

    def __init__(
        self,
        settings: Settings,
        stored_embedder: Callable[[], str | None],
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ):
        self.settings = settings
        # The embedder's name recorded in the store: with backend "auto" a knowledge base
        # keeps the backend it was embedded with.
        self._stored_embedder = stored_embedder
        self._given: dict[str, Any] = {}
        if embedder is not None:
            self._given["embedder"] = Locked(embedder)
        if generator is not None:
            self._given["generator"] = generator
        self.__dict__.update(self._given)
        self._wrap_lock = threading.Lock()
        # Where questions wait for the generator: built now, so that two threads' first
        # questions cannot each build one (kept by `renewed` unless its settings change).
        self.queue = GenerationQueue(
            settings.generator_slots, settings.queue_limit, settings.queue_retry_seconds
        )

    def embedder_factory(self, backend_name: str | None = None) -> Callable[[], Embedder]:
        """A picklable builder of this embedder (Spark executors build their own); with
        `backend_name` (the driver embedder's name) the same backend, so the vectors agree."""
        s = self.settings
        return partial(
            make_embedder,
            s.embedding_model,
            s.device,
            s.embed_batch_size,
            s.embedding_backend,
            backend_name,
            s.model_cache,
            s.embed_threads,
        )

    @cached_property
    def embedder(self) -> Embedder:
        return Locked(self.embedder_factory(self._stored_embedder())())

    @cached_property
    def generator(self) -> Generator:
        s = self.settings
        check_generator_name(s.generator_model, s.models_dir)
        return make_generator(
            s.generator_model,
            s.models_dir,
            s.device,
            s.model_cache,
            s.generator_backend,
            s.generator_threads,
            s.generator_precision,
            s.generator_slots,
            s.generator_draft,
        )

    @cached_property
    def reranker(self):
        from kbqa.retrieval.rerank import make_reranker

        return make_reranker(self.settings.rerank_model, self.settings.device)

    def locked(self, generator: Generator | None) -> Generator | None:
        """`generator` behind the generation queue, and called through a lock unless it takes
        concurrent requests itself (one wrapper per generator object)."""
        if generator is None:
            return None
        with self._wrap_lock:
            wrapped = self.__dict__.get("_locked_generator")
            if wrapped is None or wrapped._generator is not generator:
                inner = generator if getattr(generator, "concurrent", False) else Locked(generator)
                wrapped = self.__dict__["_locked_generator"] = Queued(inner, self.queue)
                wrapped._generator = generator
        return wrapped

    def renewed(
        self, settings: Settings, changed: set[str], stored_embedder: Callable[[], str | None]
    ) -> Models:
        """The models for `settings`, which differ from these in `changed`: a model given is
        kept, one built here unless a setting it was built from changed."""
        models = Models(settings, stored_embedder)
        models._given, models._wrap_lock = self._given, self._wrap_lock
        models.__dict__.update(self._given)
        for name, reads in READS.items():
            if name in self.__dict__ and not reads & changed:
                models.__dict__.setdefault(name, self.__dict__[name])
        if not READS["queue"] & changed:
            for kept in ("_locked_generator", "queue"):
                if kept in self.__dict__:
                    models.__dict__[kept] = self.__dict__[kept]
        return models


def check_generator_name(name: str, models_dir: Path) -> None:
    """A one-line ModelError, at once, for a generator name that is nothing here and that the
    Hugging Face hub cannot be asked about (offline): otherwise the hub client retries for most
    of a minute, warning at each try."""
    if name == "echo" or name in PACKAGED or (models_dir / name).exists():
        return
    if name.startswith(("/", ".", "~")) or name.endswith(".gguf") or Path(name).exists():
        return  # a file or folder: the loader names what is wrong with it
    if _hub_cached(name):
        return
    where = f"packaged ({', '.join(PACKAGED)}), under {models_dir}, a file or folder"
    if not _hub_reachable():
        raise ModelError(
            f"generator_model {name!r} is not a model here ({where}) and the Hugging Face hub "
            "cannot be reached (offline)"
        )


def _hub_cached(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # not a valid repository id
        return False


def _hub_reachable(timeout: float = 2.0) -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    if constants.HF_HUB_OFFLINE:
        return False
    host = urlsplit(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


class Locked:
    """A model whose calls run one at a time. Hugging Face's fast tokenizers fail ("Already
    borrowed") when one is used by two threads at once, and on a CPU concurrent calls only
    compete for the same cores. An embedder that says it is `concurrent` embeds unserialised.
    Other attributes pass through."""

    def __init__(self, model: Any):
        self._model = model
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._model, name)
        if not callable(value) or name.startswith("_"):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = value(*args, **kwargs)
            if isinstance(result, Iterator) and not isinstance(result, (str, bytes)):
                return self._locked_iteration(result)
            return result

        return call

    def _locked_iteration(self, iterator: Iterator) -> Iterator:
        # A streaming method runs the model while it is iterated: hold the lock meanwhile.
        with self._lock:
            yield from iterator

    def embed(self, texts: list[str]):
        # A model that says it may be called from several threads at once (the ONNX
        # embedder: onnxruntime's sessions are) is not serialised: an ingest embeds ahead on
        # every core (ingest/prefetch.py).
        if getattr(self._model, "concurrent", False):
            return self._model.embed(texts)
        with self._lock:
            return self._model.embed(texts)

    def generate(self, *args: Any, **kwargs: Any):
        with self._lock:
            return self._model.generate(*args, **kwargs)
