"""Answers kept for the same question again: engineers ask the same things every week.

An answer is served again only to the same audience (the whole Audience value: channel, token,
its sources; and the asker's own source patterns), from the same state of the knowledge base
(the snapshot generation: any ingest that adds or removes a chunk changes it) and under the same
options (k, extractive) and settings (a new Settings builds a new cache: services.py). The
question matches when its normalised text is the same, or when its embedding is within
`similarity` (a cosine) of a cached question's; the threshold is measured on paraphrase pairs
and unrelated questions (benchmarks/answer_cache.py, docs/serving-speed-cache.md).

Not cached: abstentions (an abstention may come of a passing condition, a generator that timed
out or was busy, and asking again is the natural reaction to one), and questions asked with a
conversation's history or a thread's context (their answer depends on more than the question).
Held in memory only, least recently used first out: a process restart forgets them, which
costs one answer each."""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kbqa.retrieval.access import Audience
from kbqa.settings import Settings
from kbqa.types import Answer, Quoted

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?.!]+$")
_WORD = re.compile(r"\w+")


def normalised(question: str) -> str:
    """The question as the cache compares it: case, spacing, Unicode forms and the final
    punctuation ignored."""
    text = unicodedata.normalize("NFKC", question).casefold()
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip())


def reordered(a: str, b: str) -> bool:
    """Whether two questions are the same words in another order ("convert a string to a
    number" / "a number to a string"): a mean-pooled embedding barely sees word order (0.99
    apart for that pair), so such a pair is never a near-duplicate."""
    words_a, words_b = _WORD.findall(normalised(a)), _WORD.findall(normalised(b))
    return words_a != words_b and sorted(words_a) == sorted(words_b)


@dataclass
class _Entry:
    answer: Answer
    at: float  # when it was answered (time.time())
    vector: np.ndarray | None = None  # the question's embedding, made on first need


class AnswerCache:
    """A bounded, thread-safe map from (audience, options, generation, question) to answers."""

    def __init__(self, size: int, similarity: float):
        self.size, self.similarity = size, similarity
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @classmethod
    def for_settings(cls, settings: Settings) -> AnswerCache:
        return cls(settings.answer_cache_size, settings.answer_cache_similarity)

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self, scope: tuple, question: str, embed: Callable[[list[str]], np.ndarray] | None = None
    ) -> Answer | None:
        """The cached answer for `question` in `scope` (marked as cached), or None."""
        started = time.perf_counter()
        key = (scope, normalised(question))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            near = [e for (s, _), e in self._entries.items() if s == scope] if not entry else []
        if entry is None and near and embed is not None and self.similarity <= 1.0:
            entry = self._nearest(question, near, embed)
        with self._lock:
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
        answer = entry.answer
        # The first answer's timings would read as this one's: only the lookup's are kept.
        timings = {"cache_ms": (time.perf_counter() - started) * 1000}
        return replace(
            answer,
            question=question,
            timings=timings,
            cached_at=entry.at,
            cached_question=answer.question,
        )

    def _nearest(
        self, question: str, entries: list[_Entry], embed: Callable[[list[str]], np.ndarray]
    ) -> _Entry | None:
        missing = [e for e in entries if e.vector is None]
        if missing:
            vectors = embed([e.answer.question for e in missing])
            for e, v in zip(missing, vectors, strict=True):
                e.vector = v
        query = embed([question])[0]
        scores = np.stack([e.vector for e in entries]) @ query
        for best in np.argsort(-scores):
            if scores[best] < self.similarity:
                return None
            if not reordered(question, entries[best].answer.question):
                return entries[best]
        return None

    def wrap(self, answerer: Any, audience: Audience | None) -> CachedAnswerer:
        """`answerer` answering `audience` through this cache."""
        return CachedAnswerer(answerer, self, audience)

    def put(self, scope: tuple, answer: Answer) -> None:
        """Keep `answer` for `scope` unless it abstained (see the module's docstring)."""
        if answer.abstained or answer.cached_at:
            return
        with self._lock:
            key = (scope, normalised(answer.question))
            self._entries[key] = _Entry(answer, time.time())
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class CachedAnswerer:
    """An Answerer's `answer` and `answer_stream` through the cache, for one audience."""

    def __init__(self, answerer: Any, cache: AnswerCache, audience: Audience | None):
        self._answerer, self._cache, self._audience = answerer, cache, audience

    def _scope(self, k, extractive, history, allow, context) -> tuple | None:
        if history or context or self._cache.size < 1:
            return None
        allowed = allow.key if allow is not None else None
        generation = self._answerer.retriever.snapshot.generation
        return (self._audience, allowed, k, bool(extractive), generation)

    def answer(self, question: str, k=None, extractive=False, history=(), allow=None, context=""):
        *_, answer = self.answer_stream(question, k, extractive, history, allow, context)
        return answer

    def answer_stream(
        self, question: str, k=None, extractive=False, history=(), allow=None, context=""
    ) -> Iterator:
        scope = self._scope(k, extractive, history, allow, context)
        items = self._answerer.answer_stream
        if scope is None:
            return items(question, k, extractive, history, allow, context)
        cached = self._cache.get(scope, question, self._answerer.embedder.embed)
        if cached is not None:
            return _replayed(cached)
        return self._kept(scope, items(question, k, extractive, history, allow, context))

    def _kept(self, scope: tuple, items: Iterator) -> Iterator:
        for item in items:
            if isinstance(item, Answer):
                self._cache.put(scope, item)
            yield item

    def __getattr__(self, name: str) -> Any:
        return getattr(self._answerer, name)


def _replayed(answer: Answer) -> Iterator:
    """A cached answer as answer_stream gives one: its evidence or its text, then the Answer."""
    if answer.mode == "pointed" and answer.evidence:
        yield from answer.evidence
    else:
        yield Quoted(answer.text) if answer.mode == "extracted" else answer.text
    yield answer
