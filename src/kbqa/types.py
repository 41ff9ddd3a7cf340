"""Frozen records shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kbqa.clock import iso, parse_time


@dataclass(frozen=True)
class Document:
    """A source file or a Slack thread as parsed: its identity and its chunks."""

    uri: str
    title: str
    content_hash: str
    chunks: tuple[Chunk, ...]
    mtime: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """What is embedded: a piece of a document under one heading path."""

    text: str
    heading: str = ""
    position: int = 0


@dataclass(frozen=True)
class Hit:
    """A stored chunk scored against a query."""

    chunk_id: int
    score: float
    text: str
    heading: str
    uri: str
    title: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """'Title › Heading', the way sources are shown to people, without repeating the title:
        the heading's first part where the title holds it (a document's own heading, a Slack
        thread's channel), then each part the title goes on with (the thread's first line). A
        section named by a word of the title ("Kafka" under "Messaging: Kafka and RabbitMQ")
        is kept."""
        parts = self.heading.split(" › ") if self.heading else []
        first = parts[0].rstrip("…").strip() if parts else ""
        if not parts or first not in self.title:
            return " › ".join([self.title, *parts])
        rest = self.title.partition(first)[2]  # the title after the parts it repeats
        parts.pop(0)
        while parts:
            rest, part = rest.removeprefix(":").lstrip(), parts[0].rstrip("…").strip()
            if not rest.startswith(part):
                break
            rest = rest[len(part) :]
            parts.pop(0)
        return " › ".join([self.title, *parts])

    @property
    def updated_at(self) -> float:
        """When the source last changed (epoch seconds; 0.0 when unknown): the time its
        ingest recorded (git commit, Slack message or edit, connector), else its mtime."""
        meta = self.metadata
        return (
            parse_time(meta.get("updated_at"))
            or parse_time(meta.get("last_ts"))
            or float(meta.get("mtime") or 0)
        )

    @property
    def author(self) -> str:
        """Who last changed the source, where it is known; ""."""
        return str(self.metadata.get("author") or "")

    @property
    def link(self) -> str | None:
        """A web link to the passage: a connector's link to the lines of its section (git's
        `section_urls`), else to its page, issue or file (`url`), else an http(s) uri."""
        sections = self.metadata.get("section_urls")
        section = sections.get(self.heading) if isinstance(sections, dict) else None
        for uri in (section, self.metadata.get("url"), self.uri):
            if isinstance(uri, str) and uri.startswith(("https://", "http://")):
                return uri
        return None


@dataclass(frozen=True)
class Citation:
    """A passage shown to the model as [n] and cited by the answer."""

    n: int
    hit: Hit


@dataclass(frozen=True)
class Evidence:
    """A unit of a cited passage that the answer points at (a sentence, a table row with its
    header, a list item, a command), copied by kbqa from the passage, never written by the model.
    `span` is the words of `text` that answer (a port, a command, a name); "" cites it whole."""

    n: int  # the citation it belongs to (Citation.n)
    text: str
    span: str = ""
    # The model's probability for naming this unit (renormalised over the valid numbers).
    probability: float = 1.0
    # How far that number stood above the next likeliest (pointer.number_margins).
    margin: float = 1.0
    # The sentences of the unit's own paragraph that its quote shows with it (units.around).
    before: str = ""
    after: str = ""

    @property
    def quote(self) -> str:
        """What is quoted: the unit with the sentences around it."""
        return " ".join(part for part in (self.before, self.text, self.after) if part)

    @property
    def block(self) -> str:
        """What the unit announces on lines of its own ("take a manual snapshot:" and the
        command, units.introduced): `after` when it starts a new line; "" otherwise."""
        return self.after if self.after.startswith("\n") else ""


class Quoted(str):
    """Streamed text that quotes the passages (the fallback), not the generator's sentences:
    an interface may hold it back and show the final Answer with its span marked instead."""


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    timings: dict[str, float] = field(default_factory=dict)
    # The probability that the hits answer the question: a logistic model over retrieval
    # signals (assistant/confidence.py), which abstention is decided on with the best cosine.
    confidence: float = 0.0
    # How the text was made: "pointed" (the model named evidence units, kbqa quoted them),
    # "generated" (free text, checked), "extracted" (quoted sentences) or "abstained".
    mode: str = "abstained"
    # Sentences the generator wrote that the support check removed, with the reason.
    dropped: tuple[tuple[str, str], ...] = ()
    # Why it abstained (the signal, its value and the threshold), or why it quoted instead of
    # answering in the generator's words; empty for a generated answer.
    reason: str = ""
    # The words of the first sentence that answer (what the question did not already say):
    # shown first or marked inside a quote; empty when abstained or when nothing stands out.
    span: str = ""
    # The units the answer rests on, in order: each quoted as evidence under its citation.
    evidence: tuple[Evidence, ...] = ()
    # Where its sources disagree, one line each: the newer value was used, the older is cited
    # ("updated 2024-03-08; earlier: 5432 in #eng-help, 2024-03-05 [2]"; assistant/freshness.py).
    updated: str = ""
    # What was searched for when it differs from `question`: a follow-up made standalone from
    # its conversation (assistant/followup.py).
    searched: str = ""
    # A note for the asker beside the answer (the question is not in the embedder's language).
    note: str = ""
    # Served again from the answer cache (assistant/cache.py): when it was first answered (a
    # Unix time; 0: answered now) and the question it was answered for (a near-duplicate's).
    cached_at: float = 0.0
    cached_question: str = ""

    def explanation(self) -> str:
        """How the answer was made, a line each: why it abstained or quoted, what was dropped,
        what a newer source changed."""
        how = self._how()
        return "\n".join(line for line in (how, self.updated) if line)

    def _how(self) -> str:
        if self.abstained:
            return f"(why: {self.reason})" if self.reason else ""
        if self.mode == "extracted" and self.reason:
            return f"(quoted from the sources: {self.reason})"
        if self.dropped:
            reasons = "; ".join(sorted({why.split(" (")[0] for _, why in self.dropped}))
            noun = "sentence" if len(self.dropped) == 1 else "sentences"
            # A pointed answer's dropped lines are units of the passages, never the model's.
            made = "pointed" if self.mode == "pointed" else "generated"
            return f"({len(self.dropped)} {made} {noun} left out: {reasons})"
        return ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape documented in the README."""

        def hit_dict(hit: Hit, n: int | None = None) -> dict[str, Any]:
            d = {
                "chunk_id": hit.chunk_id,
                "uri": hit.uri,
                "title": hit.title,
                "heading": hit.heading,
                "link": hit.link,
                "text": hit.text,
                "score": round(hit.score, 4),
                "updated_at": iso(hit.updated_at) if hit.updated_at else None,
                "author": hit.author or None,
            }
            return {"n": n, **d} if n is not None else d

        return {
            "question": self.question,
            "searched": self.searched,
            "note": self.note,
            "answer": self.text,
            "span": self.span,
            "abstained": self.abstained,
            "mode": self.mode,
            "confidence": round(self.confidence, 4),
            "reason": self.reason,
            "dropped": [{"sentence": s, "reason": why} for s, why in self.dropped],
            "updated": self.updated,
            "evidence": [
                {
                    "n": e.n,
                    "text": e.text,
                    "span": e.span,
                    "before": e.before,
                    "after": e.after,
                    "probability": round(e.probability, 4),
                }
                for e in self.evidence
            ],
            "citations": [hit_dict(c.hit, c.n) for c in self.citations],
            "hits": [hit_dict(h) for h in self.hits],
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "cached": bool(self.cached_at),
            **(
                {"cached_at": _iso(self.cached_at), "cached_question": self.cached_question}
                if self.cached_at
                else {}
            ),
        }


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
