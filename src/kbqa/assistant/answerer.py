"""Question -> retrieved passages -> a cited Answer, or an abstention that says why.

The answerer is a pipeline of small stages, each one's output the next one's input:
retrieve (hits) -> decide (answer or abstain, with the reason) -> focus (the passages' lines
the model is shown) -> answer, in one of two styles:
- "pointed" (assistant/pointed.py): the model names evidence units under a grammar and kbqa
  quotes them; each checked unit is yielded as Evidence as soon as its line is written;
- "free" (assistant/free.py): the model writes sentences, each checked against the passages
  and yielded as soon as it passes; a quote (assistant/quote.py) stands in when none does.
`answer_stream` always ends with the Answer.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from kbqa.assistant import confidence, freshness, pointed, support
from kbqa.assistant.free import DECLINED, Draft, nothing_kept, take
from kbqa.assistant.generator import Generator, generate_many, stream
from kbqa.assistant.prompt import ABSTAIN_TEXT, build_messages
from kbqa.assistant.quote import extract, proposals, proposed_span
from kbqa.assistant.span import answer_span
from kbqa.retrieval.retriever import Retriever
from kbqa.settings import Settings
from kbqa.types import Answer, Hit, Quoted

log = logging.getLogger(__name__)


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
        # Where the passages disagree, the newer is the evidence and the answer says so.
        hits, changed = freshness.prefer_newer(question, hits)
        for item in self._answer_stream(question, hits, timings, extractive, history):
            yield freshness.annotate(item, changed) if isinstance(item, Answer) else item

    def _answer_stream(
        self,
        question: str,
        hits: list[Hit],
        timings: dict[str, float],
        extractive: bool,
        history: list[tuple[str, str]],
    ) -> Iterator[str | Answer]:
        started = time.perf_counter()
        reason = self.abstain_reason(question, hits)
        if reason or extractive or self.generator is None:
            answer = self._finish(question, hits, timings, Draft(hits), None, reason, started)
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
                if shown := take(self, question, hits, sentence, draft):
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
            draft = self._draft(question, hits) if i in raws else Draft(hits)
            if i in raws:
                timings["generate_ms"] = each
                for sentence in support.split_sentences(raw):
                    take(self, question, hits, sentence, draft)
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
        """The passages the generator sees: of the first `prompt_passages`, those up to the last
        whose cosine is within `prompt_score_gap` of the first one's. Always a prefix of `hits`,
        so the prompt's [n] is hits[n - 1]: hits are ranked by fusion, not by cosine, and
        leaving out a lower-cosine passage from the middle shifted every later number, which
        cited a passage the model never saw."""
        s = self.settings
        if not hits:
            return hits
        best = hits[0].score
        within = [
            i
            for i, h in enumerate(hits[: s.prompt_passages])
            if h.score >= best - s.prompt_score_gap
        ]
        return hits[: within[-1] + 1]

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

    def _draft(self, question: str, hits: list[Hit]) -> Draft:
        """An empty draft for checking the generator's sentences against `hits`."""
        confident = self.confidence(question, hits) >= self.settings.min_quote_confidence
        return Draft(hits, self.coverage(question, hits), confident)

    # -- finish --------------------------------------------------------------------------------

    def _finish(
        self,
        question: str,
        hits: list[Hit],
        timings: dict[str, float],
        draft: Draft,
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
            why = nothing_kept(raw, dropped) if raw is not None else ""
            declined = why == DECLINED
            if raw is not None and (
                self.settings.on_unsupported == "abstain"
                or (declined and self.settings.on_idk == "abstain")
            ):
                return abstain(why)
            if raw is not None and confidence < self.settings.min_quote_confidence:
                floor = self.settings.min_quote_confidence
                return abstain(f"{why}; confidence {confidence:.2f} < min_quote_confidence {floor}")
            mode, draft = "extracted", Draft(hits)
            for sentence, n in extract(self, question, hits, proposals(question, dropped)):
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


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
