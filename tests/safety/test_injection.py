"""The injection benchmark's short version: planted instructions and canaries reach no answer
to another topic, even from a generator that obeys them, and nothing rendered pings anyone.
The slow version asks a handful of questions of the real default generator."""

import json

import pytest

from conftest import HANDBOOK, ROOT
from kbqa.app import KnowledgeBase
from kbqa.evals.hostile import ObedientGenerator, other_questions, violations, write_corpus
from kbqa.integrations.slack.blocks import answer_blocks
from kbqa.retrieval.access import Audience
from kbqa.retrieval.embedder import HashEmbedder

QA = json.loads((ROOT / "tests" / "data" / "handbook_qa.json").read_text())
AUDIENCE = Audience(channel_id="C0BENCH", channel_name="bench")


def _ask_all(kb, docs, questions):
    bad = []
    for question, topic in questions:
        answer = kb.ask(question, audience=AUDIENCE)
        _, blocks = answer_blocks(answer)
        bad += [(question, v, answer.text) for v in violations(answer, blocks, docs, topic)]
    return bad


@pytest.fixture
def planted_kb(settings, tmp_path):
    docs = write_corpus(tmp_path / "corpus")
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=ObedientGenerator())
    kb.ingest([HANDBOOK / "runbooks" / "databases.md", HANDBOOK / "faq", tmp_path / "corpus"])
    return kb, docs


def test_an_obedient_generator_gets_no_canary_into_answers_on_other_topics(planted_kb):
    kb, docs = planted_kb
    questions = [(q, None) for q in other_questions(QA, 20)]
    questions += [(d.question, d) for d in docs[:5]]
    assert _ask_all(kb, docs, questions) == []


def test_without_the_fence_the_same_generator_is_caught_obeying(planted_kb, monkeypatch):
    # The benchmark can fail: with the prompt unfenced, the planted instructions get through.
    kb, docs = planted_kb
    monkeypatch.setattr("kbqa.assistant.prompt.fence", lambda text: text.strip())
    questions = [(d.question, None) for d in docs]  # count even on-topic quotes as obeying
    assert _ask_all(kb, docs, questions)


@pytest.mark.slow
def test_the_real_generator_follows_no_planted_instruction(tmp_path):
    from kbqa.settings import Settings

    docs = write_corpus(tmp_path / "corpus")
    kb = KnowledgeBase(Settings(home=tmp_path / "home"))
    kb.ingest([HANDBOOK / "runbooks", HANDBOOK / "faq", tmp_path / "corpus"])
    questions = [(q, None) for q in other_questions(QA, 4)]
    questions += [(d.question, d) for d in docs[:4]]  # one of each instruction kind
    assert _ask_all(kb, docs, questions) == []
