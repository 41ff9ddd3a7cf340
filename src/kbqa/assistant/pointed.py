"""The pointer answer path: units -> one grammar-held request -> checked picks -> quoted evidence.

The model names the units that answer (pointer.py); each finished line of its reply is checked
by the named signals (signals.py) and, when it passes, yielded at once as Evidence: the unit
as the passage writes it, copied by kbqa. The Answer's text is those units, each with its
citation; nothing the model wrote in its own words is delivered.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kbqa.assistant import pointer, signals, steps
from kbqa.assistant.generator import point
from kbqa.assistant.prompt import ABSTAIN_TEXT
from kbqa.assistant.span import marks_answer
from kbqa.assistant.text import content_words
from kbqa.assistant.units import Unit, around, introduced, units
from kbqa.errors import ModelError
from kbqa.types import Answer, Citation, Evidence, Hit

if TYPE_CHECKING:
    from kbqa.assistant.answerer import Answerer

log = logging.getLogger(__name__)

# A reply line whose unit number is complete ("[4]" and on): its unit is known.
_NAMED = re.compile(r"^\s*\[[1-9]\d{0,2}\]")

DECLINED = "the model found no sentence in the sources that answers the question"
# How a reason says that a check rejected the model's pick (render/model.py reads it).
REJECTED = "the model named was rejected"


def answer_stream(
    answerer: Answerer,
    question: str,
    hits: list[Hit],
    timings: dict[str, float],
    history: list[tuple[str, str]] = (),
) -> Iterator[Evidence | Answer]:
    """Each checked Evidence as soon as its line of the reply names its unit, then the Answer
    (whose evidence carries the copied words of each line)."""
    started = time.perf_counter()
    passages = answerer.shown(hits)
    found = steps.with_procedures(question, passages, units(answerer.focus(question, passages)))
    found, labels = pointer.numbered(found, answerer.settings.pointer_labels)
    checks = signals.build(answerer.settings)
    # The word limit on copies (version 15), where kbqa completes the lines it cuts; drafting
    # copies quickly already, and its replies are held whole, so it goes without.
    copies = answerer.settings.pointer_copies
    draft = answerer.settings.generator_draft
    limit = 0 if draft or not copies else answerer.settings.pointer_max_words
    context = answerer.settings.quote_context_chars
    # A failed pick abstains the whole answer: hold the quotes until the reply has ended.
    hold = answerer.settings.on_failed_pick == "abstain"
    kept: list[tuple[pointer.Pick, Unit]] = []
    dropped: list[tuple[str, str]] = []
    numbers: dict[int, int] = {}  # passage n -> its citation number, in order of first use
    # The passages the reply names, in its order (a failed pick's too): with
    # pointer_max_sources, units of passages named after the first ones are not quoted.
    sources_named: list[int] = []
    sources = answerer.settings.pointer_max_sources
    evidence: list[Evidence] = []
    reply, tokens, done = "", [], 0
    early: dict[int, int | None] = {}  # a line quoted before it ended -> its evidence index
    # A generator with `point` holds its reply to the grammar; others write the format freely.
    # (The queue's wrapper has `point` for every model: it says whether its model does.)
    generator = answerer.generator
    held = getattr(generator, "takes_grammar", hasattr(generator, "point"))
    budget = answerer.settings.pointer_max_tokens
    fill = pointer.Filler(found, labels, limit) if limit else None
    grammar = pointer.grammar(found, labels, limit, copies=copies)
    if copies and not draft and answerer.settings.pointer_fill:
        # kbqa writes each named unit's words; the model writes the numbers (version 19).
        fill = pointer.Writer(found, labels, budget)
        grammar = pointer.grammar(found, labels, copies="kbqa")
    if found:
        pieces = point(
            answerer.generator,
            pointer.messages(question, passages, found, history, labels, copies),
            grammar,
            budget,
            fill,
        )
        for piece in itertools.chain(pieces, [None]):  # None: the reply is complete
            if piece is not None:
                reply += piece[0]
                tokens += piece[1]
                if held and reply.strip() and not reply.lstrip().startswith("["):
                    # A llama.cpp that dropped the grammar (llguidance ignored one it could not
                    # parse) writes free text: kbqa's bug, and it must never reach a user.
                    name = answerer.generator.name
                    raise ModelError(f"{name}: the reply did not follow the pointer grammar")
            lines = reply.split("\n")
            finished = lines if piece is None else lines[:-1]
            scores = pointer.scores(tokens, labels)
            todo = [(i, finished[i]) for i in range(done, len(finished))]
            # A line's unit is known once its number is written: quote it then, without
            # waiting for the copied words (they only mark the answer inside the quote and
            # are filled in when the line is finished).
            named = _NAMED.match(lines[-1]) if piece is not None else None
            if named and len(lines) - 1 not in early:
                todo.append((len(lines) - 1, named.group(0)))
            for i, line in todo:
                if i in early:
                    picks = pointer.parse(line, found, labels=labels)
                    if (at := early[i]) is not None and picks:
                        unit_text = evidence[at].text
                        span = _span(picks[0].span, unit_text, question)
                        evidence[at] = dataclasses.replace(evidence[at], span=span)
                    continue
                complete = i < len(finished)
                if not complete:
                    early[i] = None
                for pick in pointer.parse(line, found, scores[i : i + 1], labels):
                    unit = found[pick.k - 1]
                    if any(pick.k == k.k for k, _ in kept) or _shown(unit, evidence, numbers):
                        continue
                    if unit.n not in sources_named:
                        sources_named.append(unit.n)
                    if sources and sources_named.index(unit.n) >= sources:
                        log.debug("not quoted, from another source: %r", unit.text)
                        continue
                    pointed = signals.Pointed(
                        question, pick, unit, hits[unit.n - 1].label, _before(found, pick.k)
                    )
                    findings = [f for check in checks if (f := check(pointed))]
                    if findings:
                        dropped.append((unit.text, "; ".join(map(str, findings))))
                        continue
                    kept.append((pick, unit))
                    c = numbers.setdefault(unit.n, len(numbers) + 1)
                    span = _span(pick.span, unit.text, question) if complete else ""
                    before, after = around(unit.text, passages[unit.n - 1].text, context)
                    if follows := introduced(unit.text, passages[unit.n - 1].text):
                        after = "\n" + follows  # "take a manual snapshot:" and the command
                    if any(before and before in e.quote for e in evidence if e.n == c):
                        before = ""  # an earlier quote of this passage shows it already
                    evidence.append(
                        Evidence(c, unit.text, span, pick.probability, pick.margin, before, after)
                    )
                    if not complete:
                        early[i] = len(evidence) - 1
                    if not hold:
                        timings.setdefault("first_evidence_ms", _ms(started))
                        yield evidence[-1]
            done = len(finished)
    log.debug("pointer reply: %r", reply)
    timings["generate_ms"] = _ms(started)
    confidence = answerer.confidence(question, hits)
    if hold and dropped:
        evidence = []  # the model was unsure of the answer: none of its picks is delivered
    elif hold and evidence:
        timings.setdefault("first_evidence_ms", _ms(started))
        yield from evidence
    if not evidence:
        why = _why_none(found, reply, dropped, hold)
        yield Answer(
            question, ABSTAIN_TEXT, True, (), tuple(hits), timings, confidence,
            dropped=tuple(dropped), reason=why,
        )  # fmt: skip
        return
    citations = tuple(Citation(c, hits[n - 1]) for n, c in numbers.items())
    text = _text(evidence)
    yield Answer(
        question, text, False, citations, tuple(hits), timings, confidence, "pointed",
        tuple(dropped), "", evidence[0].span, tuple(evidence),
    )  # fmt: skip


def _shown(unit: Unit, evidence: list[Evidence], numbers: dict[int, int]) -> bool:
    """Whether an earlier quote of the unit's passage shows the unit already (its context)."""
    c = numbers.get(unit.n)
    return any(e.n == c and (unit.text == e.before or unit.text in e.after) for e in evidence)


def _before(found: list[Unit], k: int) -> str:
    """The unit before unit k in the same passage ("" for a passage's first)."""
    if k >= 2 and found[k - 2].n == found[k - 1].n:
        return found[k - 2].text
    return ""


def _span(span: str, text: str, question: str) -> str:
    """The copied words worth marking: not stopwords alone, not (nearly) the whole unit, not
    the question's own words or a figure it did not ask for (span.marks_answer)."""
    if not content_words(span) and not any(ch.isdigit() for ch in span):
        return ""
    if not marks_answer(question, span):
        return ""
    return "" if len(span) >= 0.9 * len(text.strip()) else span


def _text(evidence: list[Evidence]) -> str:
    """The answer's text: each quote with its citation after its prose; a block a unit
    introduces (units.introduced) follows on its own lines, and the next quote after a blank
    line (a fence closes alone on its line)."""
    out = ""
    for e in evidence:
        block = e.block
        prose = e.quote[: len(e.quote) - len(block)] if block else e.quote
        out += ("\n\n" if out.endswith("```") else " " if out else "") + _cited(prose, e.n)
        out += block
    return out


def _cited(text: str, c: int) -> str:
    body = text.rstrip()
    end = body[-1] if body and body[-1] in ".!?" else ""
    if body.endswith(":"):  # it announces what follows (units.introduced)
        return f"{body} [{c}]"
    return f"{body[: len(body) - len(end)] if end else body} [{c}]{end or '.'}"


def _why_none(
    found: list[Unit], reply: str, dropped: list[tuple[str, str]], hold: bool = False
) -> str:
    if not found:
        return "the passages hold no sentence that could be quoted as an answer"
    if dropped and hold:
        return f"a unit {REJECTED}, so its answer is not sure ({dropped[0][1]})"
    if dropped:
        return f"the unit {REJECTED} ({dropped[0][1]})"
    if reply.strip().startswith("[0]"):
        return DECLINED
    return "the generator's reply named no sentence of the sources"


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


__all__ = ["DECLINED", "REJECTED", "answer_stream"]
