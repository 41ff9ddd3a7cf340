"""Question -> retrieved passages -> generated (or quoted) answer -> checked, cited Answer.

The answerer is a pipeline of small stages, each one's output the next one's input:
retrieve (hits) -> decide (answer or abstain, with the reason) -> focus (the passages' lines
the model is shown) -> generate (streamed) -> check (each finished sentence against the
passages) -> render (citations renumbered in order of use). `answer_stream` yields each
sentence as soon as it has passed the check, then the Answer.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from kbqa.assistant import confidence, pointed, support
from kbqa.assistant.generator import Generator, generate_many, stream
from kbqa.assistant.prompt import ABSTAIN_TEXT, build_messages, instruction_sentences
from kbqa.assistant.span import answer_span
from kbqa.retrieval.retriever import Retriever
from kbqa.settings import Settings
from kbqa.types import Answer, Citation, Hit, Quoted

log = logging.getLogger(__name__)

_IDK = re.compile(
    r"\bI (?:don't|do not) know\b|\bnot (?:contain|mention|provide|specif)|\bno information\b",
    re.I,
)
# "follow the steps in Source [1]": a pointer to a passage, not an answer.
_POINTER = re.compile(
    r"\b(?:source|document|passage)s? ?\[?\d|\b(?:outlined|described|mentioned|provided) in\b",
    re.I,
)

# A sentence with no full stop that ends on an article, a conjunction, a preposition or a
# copula was cut off (by the token budget, say): "Once the version is" passed every check,
# since each of its words is common, and was delivered as "Once the version is [1]."
_CUT_OFF = re.compile(
    r"\b(?:the|a|an|and|or|but|is|are|was|were|if|than|because|of|to|with|for|in)\s*$"
)


@dataclass
class _Draft:
    """The sentences kept so far, rendered with citations numbered in order of first use."""

    hits: list[Hit]
    # Each hit's share of the question's terms (IDF-weighted): the first sentence must come
    # from a passage that covers the question nearly as well as the best (see _take).
    coverage: list[float] = field(default_factory=list)
    # Retrieval is confident enough for a quote: the question's own names need not be in the
    # passage (support.missing_names).
    confident: bool = False
    numbers: dict[int, int] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)  # bare, for the repeat check
    rendered: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, sentence: str, cited: list[int]) -> str:
        marks = "".join(f"[{self.numbers.setdefault(n, len(self.numbers) + 1)}]" for n in cited)
        body = sentence.rstrip()
        end = body[-1] if body and body[-1] in ".!?" else ""
        body = body[: len(body) - len(end)] if end else body
        text = f"{body} {marks}{end or '.'}"
        self.sentences.append(sentence)
        self.rendered.append(text)
        return text

    @property
    def text(self) -> str:
        return " ".join(self.rendered)

    @property
    def citations(self) -> tuple[Citation, ...]:
        return tuple(Citation(shown, self.hits[n - 1]) for n, shown in self.numbers.items())


class Answerer:
    def __init__(self, retriever: Retriever, generator: Generator | None, settings: Settings):
        self.retriever, self.generator, self.settings = retriever, generator, settings
        self.embedder = retriever.embedder

    # -- the verbs -------------------------------------------------------------------------

    def answer(
        self,
        question: str,
        k: int | None = None,
        extractive: bool = False,
        history: list[tuple[str, str]] = (),
        allow: Callable[[Hit], bool] | None = None,
        context: str = "",
    ) -> Answer:
        """Answer from the top k passages (those `allow` accepts), or abstain; extractive mode
        quotes, never generates. `context` (say, a thread's first message) joins the search."""
        *_, answer = self.answer_stream(question, k, extractive, history, allow, context)
        return answer

    def answer_stream(
        self,
        question: str,
        k: int | None = None,
        extractive: bool = False,
        history: list[tuple[str, str]] = (),
        allow: Callable[[Hit], bool] | None = None,
        context: str = "",
    ) -> Iterator[str | Answer]:
        """answer() as it happens: each checked sentence (a str, with its final [n] marks) as
        soon as it passes, then the Answer, always last."""
        query = f"{context}\n{question}" if context else question
        hits, timings = self._retrieve(query, k, allow)
        started = time.perf_counter()
        reason = self.abstain_reason(question, hits)
        if reason or extractive or self.generator is None:
            answer = self._finish(question, hits, timings, _Draft(hits), None, reason, started)
            if not answer.abstained:
                yield Quoted(answer.text) if answer.mode == "extracted" else answer.text
            yield answer
            return
        if self.settings.answer_style == "pointed":
            yield from pointed.answer_stream(self, question, hits, timings, history)
            return
        draft, raw = self._draft(question, hits), ""
        done = 0  # sentences of `raw` already checked
        pieces = stream(self.generator, self.messages(question, hits, history), self._budget)
        for piece in itertools.chain(pieces, [None]):  # None: the reply is complete
            raw += piece or ""
            sentences = support.split_sentences(raw)
            # While the reply goes on, all but the last sentence are finished.
            finished = sentences if piece is None else sentences[:-1]
            for sentence in finished[done:]:
                if shown := self._take(question, hits, sentence, draft):
                    timings.setdefault("first_sentence_ms", _ms(started))
                    yield shown
            done = max(done, len(finished))
        log.debug("generator said: %r", raw)
        answer = self._finish(question, hits, timings, draft, raw, None, started)
        if answer.mode == "extracted":
            yield Quoted(answer.text)
        yield answer

    def answer_many(
        self, questions: list[str], k: int | None = None, extractive: bool = False
    ) -> list[Answer]:
        """answer() for many questions, the generator's prompts run in batches (evaluation)."""
        if self.settings.answer_style == "pointed" and not extractive:
            return [self.answer(q, k) for q in questions]  # one request each: no batching
        retrieved = [self._retrieve(q, k, None) for q in questions]
        wanted = [
            i
            for i, (hits, _) in enumerate(retrieved)
            if not extractive
            and self.generator is not None
            and not self.abstain_reason(questions[i], hits)
        ]
        started = time.perf_counter()
        replies = generate_many(
            self.generator,
            [self.messages(questions[i], retrieved[i][0]) for i in wanted],
            self._budget,
        )
        each = (time.perf_counter() - started) * 1000 / max(len(wanted), 1)
        raws: dict[int, str] = dict(zip(wanted, replies, strict=True))
        out = []
        for i, (question, (hits, timings)) in enumerate(zip(questions, retrieved, strict=True)):
            begun = time.perf_counter()
            raw = raws.get(i)
            draft = self._draft(question, hits) if i in raws else _Draft(hits)
            if i in raws:
                timings["generate_ms"] = each
                for sentence in support.split_sentences(raw):
                    self._take(question, hits, sentence, draft)
            reason = None if i in raws else self.abstain_reason(question, hits)
            out.append(self._finish(question, hits, timings, draft, raw, reason, begun))
        return out

    # -- retrieve and decide ---------------------------------------------------------------

    def _retrieve(
        self, query: str, k: int | None, allow: Callable[[Hit], bool] | None
    ) -> tuple[list[Hit], dict[str, float]]:
        started = time.perf_counter()
        hits = self.retriever.search(query, k or self.settings.top_k, allow)
        return hits, {"retrieve_ms": _ms(started)}

    def confidence(self, question: str, hits: list[Hit]) -> float:
        """The probability that the hits answer the question: a logistic model over retrieval
        signals (cosine, the question's rare terms in the hits, the margin to the second hit,
        BM25), fitted on halueval-qa dev (kbqa/assistant/confidence.py)."""
        if not hits:
            return 0.0
        return confidence.shipped().probability(
            confidence.signals(question, hits, self.retriever.lexical)
        )

    def abstain_reason(self, question: str, hits: list[Hit]) -> str | None:
        """Why retrieval alone says not to answer (signal, value, threshold), or None."""
        s = self.settings
        if not hits:
            return "no passage was found"
        if hits[0].score < s.min_hit_score:
            score = hits[0].score
            return f"best passage's similarity {score:.2f} < min_hit_score {s.min_hit_score}"
        confidence = self.confidence(question, hits)
        if confidence < s.min_confidence:
            return f"confidence {confidence:.2f} < min_confidence {s.min_confidence}"
        return None

    # -- focus and generate ------------------------------------------------------------------

    @property
    def _budget(self) -> int:
        return self.settings.max_new_tokens

    def messages(
        self, question: str, hits: list[Hit], history: list[tuple[str, str]] = ()
    ) -> list[dict[str, str]]:
        """The generator's prompt: the shown hits, focused on the question."""
        return build_messages(question, self.focus(question, self.shown(hits)), history)

    def shown(self, hits: list[Hit]) -> list[Hit]:
        """The passages the generator sees: the first `prompt_passages`, those within
        `prompt_score_gap` of the best score. They keep their numbers, so a citation [n] is
        hits[n - 1] either way."""
        s = self.settings
        if not hits:
            return hits
        best = hits[0].score
        return [h for h in hits[: s.prompt_passages] if h.score >= best - s.prompt_score_gap]

    def focus(self, question: str, hits: list[Hit]) -> list[Hit]:
        """The hits with each text cut to its lines closest to the question, at most
        `prompt_passage_chars` characters, in their own order ("…" marks a gap). Prompt
        processing is most of a CPU answer's time, and a small model answers better from the
        few lines that matter than from a whole section. The check still reads whole passages."""
        budget = self.settings.prompt_passage_chars
        if budget <= 0:
            return hits
        split = [support.split_sentences(h.text) for h in hits]
        long = [i for i, h in enumerate(hits) if len(h.text) > budget and split[i]]
        if not long:
            return hits
        lines = [s for i in long for s in split[i]]
        vectors = self.embedder.embed([question, *lines])
        asked = support.content_words(question)
        out, row = list(hits), 1
        for i in long:
            sentences = split[i]
            cosine = vectors[row : row + len(sentences)] @ vectors[0]
            row += len(sentences)
            shared = np.array(
                [len(asked & set(support.words(s))) / max(len(asked), 1) for s in sentences]
            )
            keep, used = set(), 0
            for j in np.argsort(-(cosine + 0.3 * shared)):
                if keep and used + len(sentences[j]) > budget:
                    continue
                keep.add(int(j))
                used += len(sentences[j])
            parts, last = [], -2
            for j in sorted(keep):
                if parts and j != last + 1:
                    parts.append("…")
                parts.append(sentences[j])
                last = j
            out[i] = replace(hits[i], text="\n".join(parts))
        return out

    # -- check ---------------------------------------------------------------------------------

    def coverage(self, question: str, hits: list[Hit]) -> list[float]:
        """Each hit's IDF-weighted share of the question's terms, as the confidence reads it."""
        return confidence.coverages(question, hits, self.retriever.lexical)

    def _draft(self, question: str, hits: list[Hit]) -> _Draft:
        """An empty draft for checking the generator's sentences against `hits`."""
        confident = self.confidence(question, hits) >= self.settings.min_quote_confidence
        return _Draft(hits, self.coverage(question, hits), confident)

    def _take(self, question: str, hits: list[Hit], sentence: str, draft: _Draft) -> str | None:
        """Check one finished sentence; keep it (returning it rendered) or record why not."""
        bare = support.strip_citations(sentence)
        cited = [n for n in dict.fromkeys(support.citations(sentence)) if 1 <= n <= len(hits)]
        if not bare.strip(" .:"):
            return None  # a lone citation marker
        if _IDK.search(bare):
            draft.dropped.append((sentence, "says the sources lack the answer"))
            return None
        if _CUT_OFF.search(bare):
            draft.dropped.append((sentence, "stops mid-sentence"))
            return None
        if bare.rstrip().endswith("?"):
            # "Margaret Mead stalked an astronaut …, and who else [1]?": the question echoed.
            draft.dropped.append((sentence, "asks instead of answering"))
            return None
        if _POINTER.search(bare):
            draft.dropped.append((sentence, "points to a source instead of answering"))
            return None
        if support.near_duplicate(bare, draft.sentences):
            draft.dropped.append((sentence, "repeats an earlier sentence"))
            return None
        vector, asked, posed = self.embedder.embed([bare, f"{question} {bare}", question])
        if not draft.rendered and _off_topic(question, bare, float(vector @ posed)):
            # "How do I rotate the Jenkins password?" -> "The services are restarted using
            # kubectl …": true to its passage, but not an answer to this question.
            draft.dropped.append((sentence, "does not address the question"))
            return None
        checks = support.check(
            question,
            [bare] * len(hits),
            # The model saw each passage under its label: its title and headings count too.
            [f"{h.label}\n{h.text}" for h in hits],
            np.repeat(vector[None], len(hits), axis=0),
            self.retriever.vectors(hits),
            self.settings.support_min_overlap,
            self.settings.support_min_similarity,
            np.repeat(asked[None], len(hits), axis=0),
            # A name the question brings in may come from another passage: the bridge.
            elsewhere="\n".join(f"{h.label}\n{h.text}" for h in hits),
            question_names=draft.confident,
        )
        backing = [n for n in cited if checks[n - 1].supported]
        if not backing:
            # Small models forget or misplace citations: a sentence that another passage
            # supports is kept and cited to that passage, the one that really says it.
            others = [n for n in range(1, len(hits) + 1) if checks[n - 1].supported]
            others.sort(key=lambda n: -(checks[n - 1].overlap + checks[n - 1].similarity))
            backing = others[:1]
        if backing and not draft.rendered and draft.coverage:
            # The direct answer comes from a passage about the question: one that covers far
            # less of it than another retrieved passage is most often about something else
            # ("Albert Brooks is the son of Harry Einstein", asked which Curb Your Enthusiasm
            # actor is; the other passage names the show).
            mine, top = draft.coverage[backing[0] - 1], max(draft.coverage)
            if mine < top - _COVERAGE_GAP:
                best = draft.coverage.index(top) + 1
                why = f"{UNSUPPORTED} ([{backing[0]}] covers less of the question than [{best}]"
                draft.dropped.append((bare, f"{why}: {mine:.2f} vs {top:.2f})"))
                return None
        if backing:
            return draft.add(bare, backing)
        best = max(range(len(hits)), key=lambda n: checks[n].overlap + checks[n].similarity)
        c = checks[best]
        why = f"{UNSUPPORTED} (best [{best + 1}]: overlap {c.overlap:.2f}, "
        why += f"similarity {c.similarity:.2f}"
        why += f", missing {', '.join(sorted(c.missing))}" if c.missing else ""
        why += f", premise {c.premise:.2f}" if c.premise < support.MIN_PREMISE else ""
        why += ")"
        draft.dropped.append((bare, why))
        return None

    # -- finish --------------------------------------------------------------------------------

    def _finish(
        self,
        question: str,
        hits: list[Hit],
        timings: dict[str, float],
        draft: _Draft,
        raw: str | None,
        reason: str | None,
        started: float,
    ) -> Answer:
        """The Answer from what was kept; quote or abstain (saying why) when nothing was."""
        confidence = self.confidence(question, hits)
        dropped = tuple(draft.dropped)

        def abstain(why: str) -> Answer:
            timings["generate_ms"] = timings.get("generate_ms", 0.0) or _ms(started)
            return Answer(
                question,
                ABSTAIN_TEXT,
                True,
                (),
                tuple(hits),
                timings,
                confidence,
                dropped=dropped,
                reason=why,
            )

        if reason:
            return abstain(reason)
        mode, why = "generated", ""
        if not draft.rendered:
            why = _nothing_kept(raw, dropped) if raw is not None else ""
            declined = why == _DECLINED
            if raw is not None and (
                self.settings.on_unsupported == "abstain"
                or (declined and self.settings.on_idk == "abstain")
            ):
                return abstain(why)
            if raw is not None and confidence < self.settings.min_quote_confidence:
                floor = self.settings.min_quote_confidence
                return abstain(f"{why}; confidence {confidence:.2f} < min_quote_confidence {floor}")
            mode, draft = "extracted", _Draft(hits)
            for sentence, n in self._extract(question, hits, _proposals(question, dropped)):
                draft.add(sentence, [n])
            if not draft.rendered:
                return abstain("no sentence of the passages answers the question")
        timings["generate_ms"] = timings.get("generate_ms", 0.0) or _ms(started)
        span = answer_span(question, support.split_sentences(draft.text)[0])
        if mode == "extracted":
            span = proposed_span(question, dropped, draft.text) or span
        return Answer(
            question,
            draft.text,
            False,
            draft.citations,
            tuple(hits),
            timings,
            confidence,
            mode,
            dropped,
            why,
            span,
        )

    def _extract(
        self, question: str, hits: list[Hit], proposed: Sequence[str] = ()
    ) -> list[tuple[str, int]]:
        """The sentences of the passages closest to the question, quoted with their passage;
        one that holds the answer the generator `proposed` (in a sentence the check rejected)
        counts as that much closer."""
        candidates = [
            (sentence, n, position)
            for n, hit in enumerate(hits, 1)
            for position, sentence in enumerate(support.split_sentences(hit.text))
            # Headings and questions (a Slack thread starts with one) are never the answer.
            if len(support.words(sentence)) >= 4
            and not _is_heading(sentence, hit)
            and not sentence.rstrip().endswith("?")
            # Nor is a sentence addressed to the assistant: the prompt's fence removes those
            # from what the model reads, and a quote must not bring them back.
            and not instruction_sentences(sentence)
        ]
        if not candidates:
            return []
        vectors = self.embedder.embed([question] + [c[0] for c in candidates])
        scores = vectors[1:] @ vectors[0]
        # A little of the passage's own rank: a sentence from a better passage wins a near tie.
        scores = scores + 0.25 * np.array([hits[n - 1].score for _, n, _ in candidates])
        if proposed:
            # Only the first proposal: the model's direct answer, not its supporting detail.
            holds = [_find(proposed[0], sentence) is not None for sentence, _, _ in candidates]
            scores = scores + _PROPOSED_BONUS * np.array(holds)
        best = float(scores.max())
        chosen = [i for i in np.argsort(-scores)[:3] if scores[i] >= best - 0.08]
        # Of those, not a passage that covers far less of the question than the best one (the
        # rule the generator's direct answer follows in _take), unless nothing else is left.
        coverage = self.coverage(question, hits)
        floor = max(coverage) - _COVERAGE_GAP
        about = [i for i in chosen if coverage[candidates[i][1] - 1] >= floor]
        chosen = sorted(about or chosen, key=lambda i: (candidates[i][1], candidates[i][2]))
        return [(candidates[i][0], candidates[i][1]) for i in chosen]


_DECLINED = "the generator said the sources lack the answer"
# How a sentence the support check rejected is marked in `dropped` (evals count them by it).
UNSUPPORTED = "not supported by any source"


# How much closer to the question a quotable sentence counts when it holds the generator's
# proposed answer (cosine + 0.25 x passage score, where the best quotes differ by ~0.05-0.1).
# Chosen on halueval-qa dev (0.05, 0.1, 0.2): 0.1 raised the quotes' citation precision most
# (0.74 -> 0.78 on dev's 81 quoted answers; test 0.77 -> 0.80) at equal span F1.
_PROPOSED_BONUS = 0.1


def _proposals(question: str, dropped: tuple[tuple[str, str], ...]) -> list[str]:
    """The answers the generator proposed in the sentences the support check rejected: each
    one's span, in the order written.

    A sentence is often rejected for what it adds around the answer (the question's premise
    restated with a name no passage has) while its answer stands in a retrieved passage:
    quoting the sentence that holds it, and marking it there, makes the model the quote's
    reader, and what is shown is the passage's own text, never the model's."""
    spans = [answer_span(question, s) for s, why in dropped if why.startswith(UNSUPPORTED)]
    return [span for span in spans if len(span) >= 2]


def _find(span: str, text: str) -> re.Match | None:
    return re.search(rf"(?<!\w){re.escape(span)}(?!\w)", text, re.IGNORECASE)


def proposed_span(question: str, dropped: tuple[tuple[str, str], ...], quote: str) -> str:
    """The first proposed answer (see `_proposals`) the quote holds, as the quote writes it;
    '' when it holds none."""
    for span in _proposals(question, dropped):
        if found := _find(span, quote):
            return found.group()
    return ""


def _nothing_kept(raw: str, dropped: tuple[tuple[str, str], ...]) -> str:
    if not dropped:
        return "the generator wrote nothing usable"
    if all(why.startswith("says the sources lack") for _, why in dropped):
        return _DECLINED
    return f"none of the generator's {len(dropped)} sentences passed the support check"


# The first sentence is the direct answer: one of 6+ words that shares no content word with the
# question and whose meaning is far from it (cosine below this) answers something else. On the
# 314 generated answers of the halueval-qa test run none is this far; 0.3 would drop a right one.
_OFF_TOPIC_COSINE = 0.25


# How much less of the question's terms (IDF-weighted share) the direct answer's passage, and
# a quoted sentence's, may cover than the best retrieved passage. Chosen on halueval-qa dev by
# replaying its recorded replies (benchmarks/replay_answers.py): for the generator's answer, at
# 0.5, 0.4, 0.3, 0.2 the generated answers holding the reference were 126, 125, 124, 124 and
# those not 30, 27, 27, 26 (citation precision 0.876, 0.884, 0.889, 0.890); then for quotes, at
# 0.5, 0.3, 0.2 citation precision 0.906, 0.913, 0.913, with span F1 and "has answer" unchanged.
_COVERAGE_GAP = 0.3


def _off_topic(question: str, sentence: str, cosine: float) -> bool:
    return (
        cosine < _OFF_TOPIC_COSINE
        and len(support.words(sentence)) >= 6
        and not support.content_words(sentence) & support.content_words(question)
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _is_heading(sentence: str, hit: Hit) -> bool:
    line = sentence.strip().rstrip(":").casefold()
    return line in {part.strip().casefold() for part in [hit.title, *hit.heading.split("›")]}
