"""The free answer style (answer_style = "free"): the generator writes sentences, and each
finished one is checked against the passages (assistant/support.py) before it is shown. The
pointer style (assistant/pointed.py) replaces this as the way to answer; this stays for models
and runtimes without grammars, and as the baseline the pointer path is measured against."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kbqa.assistant import support
from kbqa.assistant.quote import COVERAGE_GAP, UNSUPPORTED
from kbqa.types import Citation, Hit

if TYPE_CHECKING:
    from kbqa.assistant.answerer import Answerer

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
class Draft:
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


def take(
    answerer: Answerer, question: str, hits: list[Hit], sentence: str, draft: Draft
) -> str | None:
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
    vector, asked, posed = answerer.embedder.embed([bare, f"{question} {bare}", question])
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
        answerer.retriever.vectors(hits),
        answerer.settings.support_min_overlap,
        answerer.settings.support_min_similarity,
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
        if mine < top - COVERAGE_GAP:
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


DECLINED = "the generator said the sources lack the answer"


def nothing_kept(raw: str, dropped: tuple[tuple[str, str], ...]) -> str:
    if not dropped:
        return "the generator wrote nothing usable"
    if all(why.startswith("says the sources lack") for _, why in dropped):
        return DECLINED
    return f"none of the generator's {len(dropped)} sentences passed the support check"


# The first sentence is the direct answer: one of 6+ words that shares no content word with the
# question and whose meaning is far from it (cosine below this) answers something else. On the
# 314 generated answers of the halueval-qa test run none is this far; 0.3 would drop a right one.
_OFF_TOPIC_COSINE = 0.25


def _off_topic(question: str, sentence: str, cosine: float) -> bool:
    return (
        cosine < _OFF_TOPIC_COSINE
        and len(support.words(sentence)) >= 6
        and not support.content_words(sentence) & support.content_words(question)
    )
