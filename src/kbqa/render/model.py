"""The model of what is shown of an answer, built once from an Answer for every medium."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kbqa.assistant.followup import ONLY_SOURCES, matched_nothing
from kbqa.assistant.pointed import REJECTED
from kbqa.clock import iso
from kbqa.types import Answer, Evidence, Hit

CLOSEST = 3  # documents listed when abstaining


def display_uri(uri: str) -> str:
    """A path relative to the working directory when it lies below it; URLs as they are."""
    if "://" in uri:
        return uri
    try:
        return str(Path(uri).relative_to(Path.cwd()))
    except ValueError:
        return uri


def age(hit: Hit, now: float | None = None) -> str:
    """How long ago the source changed ("today", "3 days ago", "2 years ago"); "" if unknown."""
    stamp = hit.updated_at
    if not stamp:
        return ""
    days = int(((now or time.time()) - stamp) // 86400)
    if days <= 0:
        return "today"
    if days < 60:
        return f"{days} day{'s' if days > 1 else ''} ago"
    return f"{days // 30} months ago" if days < 730 else f"{days // 365} years ago"


def cached_line(answer: Answer, now: float | None = None) -> str:
    """'(answered 3 days ago from the same sources)' for an answer served again from the cache
    (with the question it was asked as, when another wording matched); "" otherwise."""
    if not answer.cached_at:
        return ""
    seconds = max(0.0, (now or time.time()) - answer.cached_at)
    if seconds < 3600:
        when = f"{int(seconds // 60)} min ago" if seconds >= 60 else "just now"
    elif seconds < 86400:
        hours = int(seconds // 3600)
        when = f"{hours} hour{'s' if hours > 1 else ''} ago"
    else:
        when = age(Hit(0, 0.0, "", "", "", "", {"mtime": answer.cached_at}), now)
    asked = answer.cached_question
    as_ = f' as "{asked}"' if asked and asked != answer.question else ""
    return f"(answered {when}{as_} from the same sources)"


@dataclass(frozen=True)
class Source:
    """A passage as people see it: its citation number (None for a closest source), its label,
    where it lives (a path or URL), a link where there is one, and its age."""

    n: int | None
    hit: Hit
    also: tuple[int, ...] = ()  # the other citations of the same section, shown under one label

    @property
    def label(self) -> str:
        return self.hit.label

    @property
    def where(self) -> str:
        return self.link or display_uri(self.hit.uri)

    @property
    def link(self) -> str | None:
        return self.hit.link

    @property
    def channel(self) -> str | None:
        """The Slack channel of a thread; None for a file."""
        meta = self.hit.metadata
        return meta.get("channel") if meta.get("kind") == "slack" else None

    def age(self, now: float | None = None) -> str:
        return age(self.hit, now)

    def line(self, where: str = "", label: str = "") -> str:
        """'[n] Label — where · age' (a closest source without the number), as text media
        show it, `where` and `label` in place of the source's own where given; the age is left
        out where the source's time is unknown."""
        text = f"{label or self.label} — {where or self.where}"
        text += f" · {self.age()}" if self.age() else ""
        return f"{self.marks} {text}" if self.n else text

    @property
    def marks(self) -> str:
        """'[1]', or '[1][3]' for a section cited twice."""
        return "".join(f"[{n}]" for n in (self.n, *self.also) if n)

    def to_dict(self) -> dict[str, Any]:
        """The page's shape: label, where, link, kind, channel, age, update time and text."""
        meta = self.hit.metadata
        out: dict[str, Any] = {
            "chunk_id": self.hit.chunk_id,
            "label": self.label,
            "uri": self.hit.uri,
            "where": self.where,
            "link": self.link,
            "kind": "slack" if meta.get("kind") == "slack" else "file",
            "channel": meta.get("channel"),
            "age": self.age(),
            "updated": self.hit.updated_at or None,
            "updated_at": iso(self.hit.updated_at) if self.hit.updated_at else None,
            "author": self.hit.author or None,
            "heading": self.hit.heading,
            "text": self.hit.text,
        }
        return {"n": self.n, **out} if self.n is not None else out


@dataclass(frozen=True)
class Shown:
    """What an interface shows of an answer."""

    text: str  # the answer's text, [n] markers included
    span: str  # words of `text` to mark (only in text the model did not write); "" for none
    # The units quoted as the answer, each with its [n] and its copied words marked inside it.
    # The copied words are never shown on their own: out of their sentence they are a new
    # claim (a conditional read as advice, a fragment of a list read as the answer), which the
    # first blind read of pointed answers found in 5 of its 8 unsupported ones (docs/pointer.md).
    evidence: tuple[Evidence, ...]
    sources: tuple[Source, ...]  # the cited passages, or the closest documents if abstained
    closest: bool  # the sources are the closest documents, not citations
    why: str  # one line on how it was made or why it abstained; "" for none
    searched: str = ""  # what was searched for, when a follow-up was made standalone
    note: str = ""  # a note beside the answer (the question's language)

    @property
    def pointed(self) -> bool:
        return bool(self.evidence)


def closest_hits(hits: tuple[Hit, ...] | list[Hit], limit: int = CLOSEST) -> list[Hit]:
    """The best hit of each document, best first, at most `limit`."""
    seen: dict[str, Hit] = {}
    for hit in hits:
        seen.setdefault(hit.uri, hit)
    return list(seen.values())[:limit]


def one_per_section(citations) -> tuple[Source, ...]:
    """The cited passages, two chunks of one section under one label ("[1][3] Label")."""
    first: dict[tuple[str, str], Source] = {}
    for c in citations:
        key = (c.hit.uri, c.hit.label)
        seen = first.get(key)
        first[key] = (
            Source(c.n, c.hit) if seen is None else Source(seen.n, seen.hit, (*seen.also, c.n))
        )
    return tuple(first.values())


def marked_span(answer: Answer) -> str:
    """The span to mark inside the text: in quoted text (the fallback), whose sentences are long
    and not the model's; a generated sentence is the model's own and is left as written."""
    if answer.mode == "extracted" and answer.span and answer.span in answer.text:
        return answer.span
    return ""


def shown(answer: Answer, closest: int = CLOSEST, cited: int | None = None) -> Shown:
    """The model of `answer` as shown: at most `closest` closest documents when it abstained,
    at most `cited` citations (all by default) when it answered."""
    pointed = answer.mode == "pointed" and bool(answer.evidence) and not answer.abstained
    if answer.abstained:
        sources = tuple(Source(None, h) for h in closest_hits(answer.hits, closest))
    else:
        sources = one_per_section(answer.citations[:cited])
    return Shown(
        text=answer.text,
        span=marked_span(answer),
        evidence=answer.evidence if pointed else (),
        sources=sources,
        closest=answer.abstained,
        why=f"({why_no_answer(answer)})"
        if answer.abstained
        else " ".join(filter(None, [answer.explanation(), cached_line(answer)])),
        searched=answer.searched,
        note=answer.note,
    )


def token_scope(sources: tuple[str, ...] | list[str]) -> str:
    """What an abstention's why adds when the asker's token searches only some sources (the
    knowledge base may hold what the token may not see); "" for a token that sees all."""
    return f"; this token searches only {', '.join(sources)}" if sources else ""


def why_no_answer(answer: Answer) -> str:
    """Why an answer abstained, in plain words with a next step; the signal, its value and the
    threshold stay in the answer's `reason` (the JSON's, for debugging)."""
    reason, _, named = answer.reason.partition(ONLY_SOURCES)
    if matched_nothing(reason):
        return (
            f"{reason}: a source is a #channel, a glob on a document's path or URL, or a part "
            "of it; leave it out to search everything"
        )
    if named:  # the same words without the named sources may find more
        return (
            f"{why_no_answer(replace(answer, reason=reason))}; only the source {named} was searched"
        )
    if not answer.hits or reason == "no passage was found":
        return (
            "nothing in the knowledge base (that you may see) matches this question; "
            "check `kbqa status` for what is indexed"
        )
    if reason.startswith(("best passage's similarity", "confidence")):
        return (
            "nothing in the knowledge base is close enough to this question; if it should be, "
            "ask in the words the docs would use, or check `kbqa status`"
        )
    if REJECTED in reason:  # a check rejected the model's pick: the passages may hold it
        return (
            "the model was not sure which sentence of the closest sources answers this, so "
            "none is given as the answer; read them, or ask again naming what you mean"
        )
    return (
        "the closest passages do not answer this question; try other words, "
        "or read the closest sources"
    )
