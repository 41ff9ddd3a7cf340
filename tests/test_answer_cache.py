"""The answer cache: the same question again is served from it, but never to another audience,
never across a change of the knowledge base, and never an abstention."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from kbqa.app import KnowledgeBase
from kbqa.assistant.cache import AnswerCache, normalised
from kbqa.assistant.generator import EchoGenerator
from kbqa.render import cached_line, terminal
from kbqa.retrieval.access import Audience
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.types import Answer

QUESTION = "When do the larkdb backups run nightly?"


class Counting(EchoGenerator):
    """The echo generator, counting the answers it writes (thread-safe)."""

    def __init__(self) -> None:
        self.calls, self._lock, self.reply = 0, threading.Lock(), ""

    def generate(self, messages, max_new_tokens: int = 96) -> str:
        with self._lock:
            self.calls += 1
        return self.reply or super().generate(messages, max_new_tokens)


@pytest.fixture
def counted(settings, docs: Path) -> tuple[KnowledgeBase, Counting]:
    generator = Counting()
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=generator)
    kb.ingest([docs])
    return kb, generator


def test_a_repeated_question_is_served_from_the_cache_and_marked(counted):
    kb, generator = counted
    first = kb.ask(QUESTION)
    assert not first.abstained and generator.calls == 1
    again = kb.ask("  when do the LARKDB backups run nightly ")
    assert generator.calls == 1
    assert again.text == first.text and again.citations == first.citations
    assert again.question == "  when do the LARKDB backups run nightly "
    data = again.to_dict()
    assert data["cached"] is True and data["cached_question"] == QUESTION
    assert data["cached_at"].endswith("+00:00")
    assert first.to_dict()["cached"] is False and "cached_at" not in first.to_dict()
    assert set(again.timings) == {"cache_ms"}  # not the first answer's generate_ms
    assert "answered just now" in terminal.answer(again)
    assert "(answered" not in terminal.answer(first)


def test_the_stream_replays_a_cached_answer(counted):
    kb, generator = counted
    streamed = list(kb.ask_stream(QUESTION))
    again = list(kb.ask_stream(QUESTION))
    assert generator.calls == 1
    assert again[:-1] == streamed[:-1]
    assert again[-1].cached_at and again[-1].text == streamed[-1].text


def test_another_audience_never_gets_a_cached_answer(counted):
    kb, generator = counted
    kb.ask(QUESTION)
    audiences = [
        Audience(channel_id="C1"),
        Audience(channel_id="C2"),
        Audience.for_token("alice", ()),
        Audience.for_token("bob", ()),  # same sources as alice, still another audience
        Audience.for_token("alice", ("runbooks/",)),
        Audience(channel_id="C1", public_only=True),
    ]
    for n, audience in enumerate(audiences, start=2):
        answer = kb.ask(QUESTION, audience=audience)
        assert not answer.cached_at and generator.calls == n, audience
    # Each audience then has its own.
    assert kb.ask(QUESTION, audience=Audience(channel_id="C2")).cached_at
    # The asker's own source patterns and the options are part of the key too.
    assert not kb.ask(QUESTION, sources=["runbooks/"]).cached_at
    assert not kb.ask(QUESTION, k=2).cached_at
    assert not kb.ask(QUESTION, extractive=True).cached_at
    assert kb.ask(QUESTION, extractive=True).cached_at


def test_a_change_to_the_knowledge_base_invalidates_the_cache(counted, docs: Path):
    kb, generator = counted
    kb.ask(QUESTION)
    (docs / "new.md").write_text("# Lunch\n\nLunch is served at noon in the atrium.\n")
    kb.ingest([docs])
    answer = kb.ask(QUESTION)
    assert not answer.cached_at and generator.calls == 2
    (docs / "notes.txt").unlink()
    kb.ingest([docs])  # a deletion alone changes the knowledge base too
    assert not kb.ask(QUESTION).cached_at and generator.calls == 3
    assert kb.ask(QUESTION).cached_at
    # (Chunk ids are never reused, so a generation names one set of chunks: removing new.md
    # now would bring back the first state exactly, whose answer is then valid again.)


def test_abstentions_and_conversations_are_not_cached(counted):
    kb, generator = counted
    generator.reply = "I don't know."  # abstained after generating: the costly kind
    assert kb.ask(QUESTION).abstained and generator.calls == 1
    again = kb.ask(QUESTION)
    assert again.abstained and not again.cached_at and generator.calls == 2
    generator.reply = ""
    history = [("who runs backups?", "the platform team")]
    kb.ask(QUESTION, history=history)
    assert not kb.ask(QUESTION, history=history).cached_at
    assert not kb.ask(QUESTION, context="a thread about backups").cached_at


def test_new_settings_start_a_new_cache(counted):
    kb, _ = counted
    kb.ask(QUESTION)
    kb.settings = kb.settings.replace(max_new_tokens=64)
    assert not kb.ask(QUESTION).cached_at
    kb.settings = kb.settings.replace(answer_cache_size=0)
    kb.ask(QUESTION)
    assert not kb.ask(QUESTION).cached_at


def test_concurrent_asks_are_answered_and_the_cache_stays_consistent(counted):
    kb, generator = counted
    questions = [QUESTION, "which port does the tracker service listen on?"] * 8
    audiences = [None, Audience(channel_id="C1")]
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda i: kb.ask(questions[i], audience=audiences[i % 4 // 2]), range(16))
        )
    assert all(not a.abstained for a in answers)
    # Four (question, audience) pairs: each written at most a few times, however they raced.
    assert len({(a.question, a.text) for a in answers}) == 2
    assert len(kb._services.answers) == 4
    assert 4 <= generator.calls <= 16
    for i in range(4):
        assert kb.ask(questions[i], audience=audiences[i // 2]).cached_at


def _answer(question: str) -> Answer:
    return Answer(question, f"an answer to {question} [1]", False, (), ())


def test_the_cache_is_bounded_least_recently_used_first_out():
    cache = AnswerCache(size=2, similarity=2.0)
    for q in ("a?", "b?"):
        cache.put(("s",), _answer(q))
    assert cache.get(("s",), "a") is not None  # "a" is now the most recent
    cache.put(("s",), _answer("c?"))
    assert cache.get(("s",), "b?") is None
    assert cache.get(("s",), "a?") is not None and cache.get(("s",), "c?") is not None
    assert len(cache) == 2


def test_a_near_duplicate_matches_above_the_threshold_only():
    vectors = {"how do i rotate the password": [1.0, 0.0], "rotating the password": [0.96, 0.28]}
    vectors["what is for lunch"] = [0.0, 1.0]

    def embed(texts):
        return np.array([vectors[normalised(t)] for t in texts], dtype=np.float32)

    cache = AnswerCache(size=8, similarity=0.95)
    cache.put(("s",), _answer("How do I rotate the password?"))
    near = cache.get(("s",), "Rotating the password", embed)
    assert near is not None and near.cached_question == "How do I rotate the password?"
    assert cache.get(("s",), "What is for lunch?", embed) is None
    assert cache.get(("other",), "Rotating the password", embed) is None
    strict = AnswerCache(size=8, similarity=0.97)
    strict.put(("s",), _answer("How do I rotate the password?"))
    assert strict.get(("s",), "Rotating the password", embed) is None


def test_the_cached_line_says_when_and_for_which_question():
    now = time.time()
    answer = Answer("q2", "t", False, (), (), cached_at=now - 3 * 86400, cached_question="q1")
    assert cached_line(answer, now) == '(answered 3 days ago as "q1" from the same sources)'
    same = Answer("q", "t", False, (), (), cached_at=now - 7200, cached_question="q")
    assert cached_line(same, now) == "(answered 2 hours ago from the same sources)"
    assert cached_line(Answer("q", "t", False, (), ()), now) == ""


def test_the_same_words_in_another_order_are_never_a_near_duplicate():
    # The packaged MiniLM put these two 0.99 apart: mean pooling barely sees word order.
    def embed(texts):
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

    cache = AnswerCache(size=8, similarity=0.5)
    cache.put(("s",), _answer("How do I convert a string to a number?"))
    assert cache.get(("s",), "How do I convert a number to a string?", embed) is None
    assert cache.get(("s",), "How can I convert a string to a number?", embed) is not None


def test_the_page_gets_the_cached_line(counted):
    from kbqa.render import page

    kb, _ = counted
    assert "cached_line" not in page.answer_data(kb.ask(QUESTION))
    data = page.answer_data(kb.ask(QUESTION))
    assert data["cached"] and data["cached_line"] == "(answered just now from the same sources)"
