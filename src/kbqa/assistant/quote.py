"""Quotes: the passages' sentences closest to the question, cited, for `--extractive` and as
the free style's fallback when none of the generator's sentences passed the check."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from kbqa.assistant import support
from kbqa.assistant.prompt import instruction_sentences
from kbqa.assistant.span import answer_span
from kbqa.types import Hit

if TYPE_CHECKING:
    from kbqa.assistant.answerer import Answerer

# How a sentence the support check rejected is marked in `dropped` (evals count them by it).
UNSUPPORTED = "not supported by any source"

# How much less of the question's terms (IDF-weighted share) the direct answer's passage, and
# a quoted sentence's, may cover than the best retrieved passage. Chosen on halueval-qa dev by
# replaying its recorded replies (tools/replay_answers.py): for the generator's answer, at
# 0.5, 0.4, 0.3, 0.2 the generated answers holding the reference were 126, 125, 124, 124 and
# those not 30, 27, 27, 26 (citation precision 0.876, 0.884, 0.889, 0.890); then for quotes, at
# 0.5, 0.3, 0.2 citation precision 0.906, 0.913, 0.913, with span F1 and "has answer" unchanged.
COVERAGE_GAP = 0.3


# How much closer to the question a quotable sentence counts when it holds the generator's
# proposed answer (cosine + 0.25 x passage score, where the best quotes differ by ~0.05-0.1).
# Chosen on halueval-qa dev (0.05, 0.1, 0.2): 0.1 raised the quotes' citation precision most
# (0.74 -> 0.78 on dev's 81 quoted answers; test 0.77 -> 0.80) at equal span F1.
_PROPOSED_BONUS = 0.1


def extract(
    answerer: Answerer, question: str, hits: list[Hit], proposed: Sequence[str] = ()
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
    vectors = answerer.embedder.embed([question] + [c[0] for c in candidates])
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
    coverage = answerer.coverage(question, hits)
    floor = max(coverage) - COVERAGE_GAP
    about = [i for i in chosen if coverage[candidates[i][1] - 1] >= floor]
    chosen = sorted(about or chosen, key=lambda i: (candidates[i][1], candidates[i][2]))
    return [(candidates[i][0], candidates[i][1]) for i in chosen]


def proposals(question: str, dropped: tuple[tuple[str, str], ...]) -> list[str]:
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
    """The first proposed answer (see `proposals`) the quote holds, as the quote writes it;
    '' when it holds none."""
    for span in proposals(question, dropped):
        if found := _find(span, quote):
            return found.group()
    return ""


def _is_heading(sentence: str, hit: Hit) -> bool:
    line = sentence.strip().rstrip(":").casefold()
    return line in {part.strip().casefold() for part in [hit.title, *hit.heading.split("›")]}
