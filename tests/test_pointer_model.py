"""The pointer path against the real packaged generator on llama.cpp (slow): the grammar holds
the model to pointers with copied words, [0] abstains, and a bad grammar is a clear error."""

from pathlib import Path

import pytest

from kbqa.app import KnowledgeBase
from kbqa.assistant import generator as gen
from kbqa.assistant import pointer
from kbqa.assistant.units import Unit, units
from kbqa.errors import ModelError
from kbqa.retrieval.embedder import HashEmbedder

MODEL = "Qwen2.5-Coder-1.5B-Instruct"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qwen():
    pytest.importorskip("xllamacpp")
    return gen.make_generator(MODEL, Path("/nonexistent"), backend="llama.cpp", threads=2)


def test_every_delivered_span_is_copied_from_its_unit(settings, docs, qwen):
    kb = KnowledgeBase(
        settings.replace(answer_style="pointed"), embedder=HashEmbedder(), generator=qwen
    )
    kb.ingest([docs])
    for question in (
        "which port does the tracker service listen on?",
        "when do larkdb backups run?",
        "how do I rotate the staging password?",
    ):
        answer = kb.ask(question)
        assert answer.mode == "pointed", (question, answer.reason)
        cited = {c.n: c.hit for c in answer.citations}
        for evidence in answer.evidence:
            assert evidence.text in {u.text for u in units([cited[evidence.n]])}
            assert evidence.span in evidence.text
            assert 0 < evidence.probability <= 1


@pytest.mark.parametrize(
    "change",
    [{"pointer_copies": False}, {"pointer_fill": True}],
    ids=["numbers alone", "kbqa writes the words"],
)
def test_the_model_names_units_and_kbqa_quotes_them(settings, docs, qwen, change):
    # Without copies, or with kbqa writing each named unit's words: the numbers are the
    # model's own (their probabilities read), the quotes kbqa's, and nothing is marked.
    kb = KnowledgeBase(
        settings.replace(answer_style="pointed", **change),
        embedder=HashEmbedder(),
        generator=qwen,
    )
    kb.ingest([docs])
    answer = kb.ask("which port does the tracker service listen on?")
    assert answer.mode == "pointed", answer.reason
    cited = {c.n: c.hit for c in answer.citations}
    assert answer.evidence and "7300" in answer.evidence[0].text
    for evidence in answer.evidence:
        assert evidence.text in {u.text for u in units([cited[evidence.n]])}
        assert evidence.span == ""
        assert 0 < evidence.probability <= 1


def test_the_grammar_holds_units_with_quotes_backslashes_and_unicode(qwen):
    found = [
        Unit(1, 'Set KBQA_HOME="C:\\kbqa\\home" — then run `kbqa ingest`.'),
        Unit(1, "Paths like /srv/larkdb/* are backed up at 02:00 UTC (nightly)."),
    ]
    reply = point_at(qwen, "What do I set KBQA_HOME to?", found)
    picks = pointer.parse(reply, found)
    assert picks and all(pick.span in found[pick.k - 1].text for pick in picks), reply
    assert all(pick.span for pick in picks), reply


def test_a_copy_cut_at_the_word_limit_is_completed_and_parsed_as_the_units_words(qwen):
    found = [
        Unit(1, "Up to 5 days of unused PTO can be carried over into the next calendar year."),
        Unit(1, "Carried-over days must be used by 31 March, after which they expire."),
    ]
    hits = [pointer_hit("\n".join(u.text for u in found))]
    question = "how many PTO days can I carry over, and until when?"
    messages = pointer.messages(question, hits, found)
    grammar = pointer.grammar(found, max_words=4)
    fill = pointer.Filler(found, list(range(1, 3)), 4)
    pieces = list(qwen.point(messages, grammar, fill=fill))
    reply = "".join(text for text, _ in pieces)
    picks = pointer.parse(reply, found)
    assert picks and all(pick.span for pick in picks), reply
    # The model wrote four words of a line at most; kbqa copied the rest of its unit.
    filled = [t["token"] for _, tokens in pieces for t in tokens if t.get("filled")]
    assert filled, reply
    assert all(len(t.split()) >= 1 for t in filled)
    assert any(found[p.k - 1].text.rstrip(".") in reply for p in picks), reply


def test_the_model_replies_zero_when_no_unit_answers(qwen):
    found = [
        Unit(1, "The office is closed from 24 December to 1 January every year."),
        Unit(1, "Backups of larkdb run nightly at 02:00 UTC."),
    ]
    reply = point_at(qwen, "What is the CEO's favourite colour?", found)
    assert reply.strip() == "[0]"
    assert pointer.parse(reply, found) == []


def test_a_bad_grammar_is_an_error_not_free_text(settings, docs, qwen, monkeypatch):
    broken = 'root ::= "[1] '  # unterminated: llama.cpp cannot parse it
    monkeypatch.setattr(pointer, "grammar", lambda *args, **kwargs: broken)
    # A prompt that does not ask for pointers, so the ungoverned reply is plain prose.
    say_hi = [{"role": "user", "content": "Say hello to the team in one sentence."}]
    monkeypatch.setattr(pointer, "messages", lambda *args, **kwargs: say_hi)
    kb = KnowledgeBase(
        settings.replace(answer_style="pointed"), embedder=HashEmbedder(), generator=qwen
    )
    kb.ingest([docs])
    with pytest.raises(ModelError, match="failed to parse grammar"):
        kb.ask("which port does the tracker service listen on?")


def point_at(qwen, question: str, found: list[Unit]) -> str:
    """The model's reply, under the pointer grammar, to `question` over one passage of `found`."""
    hits = [pointer_hit("\n".join(u.text for u in found))]
    messages = pointer.messages(question, hits, found)
    return "".join(text for text, _ in qwen.point(messages, pointer.grammar(found)))


def pointer_hit(text: str):
    from kbqa.types import Hit

    return Hit(1, 0.9, text, "", "notes.txt", "Notes")


def test_drafted_unit_numbers_are_scored_as_without_drafting(qwen):
    """With prompt lookup on, llama.cpp reports no probabilities for drafted tokens; kbqa
    scores each drafted unit number again, so the pointer's checks read what they read
    without drafting: the same reply, the same probability for each number."""
    drafting = gen.make_generator(
        MODEL, Path("/nonexistent"), backend="llama.cpp", threads=2, draft=True
    )
    found = [
        Unit(1, "Up to 5 days of unused PTO can be carried over into the next calendar year."),
        Unit(1, "Carried-over days must be used by 31 March, after which they expire."),
        Unit(1, "The office is closed from 24 December to 1 January every year."),
    ]
    question = "How many PTO days carry over, and until when can I use them?"
    hits = [pointer_hit("\n".join(u.text for u in found))]
    messages = pointer.messages(question, hits, found)
    labels = [1, 2, 3]
    replies = []
    for model in (qwen, drafting):
        pieces = list(model.point(messages, pointer.grammar(found)))
        tokens = [t for _, written in pieces for t in written]
        replies.append(("".join(text for text, _ in pieces), tokens))
    (plain, plain_tokens), (drafted, drafted_tokens) = replies
    assert drafted == plain
    assert len(pointer.parse(plain, found)) >= 2, plain  # a later line's number is drafted
    assert any(t.get("drafted") for t in drafted_tokens)  # drafting did happen
    expected = pointer.number_probabilities(plain_tokens, labels)
    got = pointer.number_probabilities(drafted_tokens, labels)
    assert got == pytest.approx(expected, abs=0.02)
    assert pointer.number_margins(drafted_tokens, labels) == pytest.approx(
        pointer.number_margins(plain_tokens, labels), abs=0.02
    )
