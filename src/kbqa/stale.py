"""What a docs owner fixes first: the sources not updated for `stale_after_days` that ground
the most rated answers (the store records, per 👍/👎, the sources the answer cited; no other
answer is recorded), and the pairs of sources that give different values for the same thing
(assistant/freshness.py's comparison, each sentence of a source's passages against their
nearest neighbours in other documents). `kbqa stale` prints it; the admin page shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from kbqa.assistant import freshness
from kbqa.assistant.text import content_words, split_sentences
from kbqa.clock import iso, parse_time
from kbqa.store.tables import DocumentRow, FeedbackRow

if TYPE_CHECKING:
    from kbqa.app import KnowledgeBase

NEIGHBOURS = 5  # passages of other documents each passage is compared with
SCANNED = 400  # passages compared at most, those of the oldest documents first


@dataclass(frozen=True)
class StaleSource:
    uri: str
    title: str
    updated_at: str  # ISO 8601
    days: int
    author: str
    cited: int  # rated answers that cited it
    liked: int
    disliked: int


@dataclass(frozen=True)
class Conflict:
    """Two sources that disagree: the newer's sentence, the older's, with when and where."""

    newer_uri: str
    newer_title: str
    newer_updated_at: str
    newer_sentence: str
    older_uri: str
    older_title: str
    older_updated_at: str
    older_sentence: str


def stale_sources(
    kb: KnowledgeBase, limit: int = 20, now: float | None = None
) -> list[StaleSource]:
    """Sources older than stale_after_days, the most cited by rated answers first, then the
    oldest."""
    now = now or time.time()
    cutoff = now - kb.settings.stale_after_days * 86400
    docs = _documents(kb)
    with kb.store.session() as s:
        ratings = s.execute(select(FeedbackRow.value, FeedbackRow.citations)).all()
    counts: dict[str, list[int]] = {}
    for value, cited in ratings:
        for uri in {c.get("uri") for c in cited or [] if isinstance(c, dict)}:
            row = counts.setdefault(uri, [0, 0])
            row[0 if value > 0 else 1] += 1
    out = []
    for uri, title, updated, mtime, author, meta in docs:
        stamp = _stamp(updated, mtime, meta or {})
        if not stamp or stamp >= cutoff:
            continue
        liked, disliked = counts.get(uri, [0, 0])
        days = int((now - stamp) // 86400)
        out.append(StaleSource(uri, title, iso(stamp), days, author or "", liked + disliked,
                               liked, disliked))  # fmt: skip
    out.sort(key=lambda d: (-d.cited, -d.days, d.uri))
    return out[:limit]


def oldest_days(kb: KnowledgeBase, now: float | None = None) -> int | None:
    """How many days ago the least recently updated source was updated (None: no source)."""
    rows = _documents(kb)
    stamps = [t for r in rows if (t := _stamp(r.source_updated_at, r.mtime, r.meta or {}))]
    return int(((now or time.time()) - min(stamps)) // 86400) if stamps else None


def _documents(kb: KnowledgeBase) -> list:
    with kb.store.session() as s:
        return s.execute(
            select(
                DocumentRow.uri,
                DocumentRow.title,
                DocumentRow.source_updated_at,
                DocumentRow.mtime,
                DocumentRow.author,
                DocumentRow.meta,
            )
        ).all()


def _stamp(updated, mtime: float, meta: dict) -> float:
    if updated is not None:
        return parse_time(updated)
    return parse_time(meta.get("updated_at")) or parse_time(meta.get("last_ts")) or mtime


def conflicts(kb: KnowledgeBase, limit: int = 20) -> list[Conflict]:
    """Pairs of sentences of two sources that disagree, found by comparing the passages of the
    oldest documents with their nearest passages in other documents (at most SCANNED
    passages), each sentence of the passage asked about in turn. A sentence is paired only
    with the most alike of the other document's sentences it disagrees with, and only where
    the two share two words or more."""
    retriever = kb.retriever.pinned()
    snapshot = retriever.snapshot
    chunks = sorted(snapshot.chunks.items(), key=lambda item: _age_key(item[1].document))
    found: dict[tuple[str, str, str, str], Conflict] = {}
    for chunk_id, _info in chunks[:SCANNED]:
        [hit] = snapshot.hits([chunk_id], [1.0])
        others = [h for h in retriever.search(hit.text, NEIGHBOURS + 1) if h.uri != hit.uri]
        # The whole passage as the question asked for all of its values at once, which no
        # other sentence gives: one sentence at a time, what it is about (its values out).
        for asked in dict.fromkeys(_about(s) for s in split_sentences(hit.text)):
            for other in others:
                for d in freshness.find(asked, [hit, other]):
                    key = (d.newer.uri, d.newer_sentence, d.older.uri, d.older_sentence)
                    found.setdefault(key, Conflict(
                        d.newer.uri, d.newer.title, iso(d.newer.updated_at), d.newer_sentence,
                        d.older.uri, d.older.title, iso(d.older.updated_at), d.older_sentence,
                    ))  # fmt: skip
    # With a sentence as the question, a sentence whose thing is one word ("Approved for
    # today") matches any that has the word; and "runs on Java 21" opens like the old copy's
    # "runs in region us-east-1", but its counterpart there is "runs on Java 17".
    alike = {key: _alike(c) for key, c in found.items()}
    best: dict[tuple[str, str, str], int] = {}  # a sentence of a document, against another
    for key, n in alike.items():
        for side in _sides(key):
            best[side] = max(best.get(side, 0), n)
    kept = [k for k, n in alike.items() if n >= 2 and all(n == best[s] for s in _sides(k))]
    return [found[k] for k in kept[:limit]]


def _sides(key: tuple[str, str, str, str]) -> tuple[tuple[str, str, str], ...]:
    newer, new, older, old = key
    return (newer, new, older), (older, old, newer)


def _alike(pair: Conflict) -> int:
    """Content words the two sentences share, who wrote them aside."""
    older, newer = (
        freshness.SPEAKER.sub("", s) for s in (pair.older_sentence, pair.newer_sentence)
    )
    return len(content_words(older) & content_words(newer))


def _about(sentence: str) -> str:
    """A sentence as a question about its thing: its words without its values ("the ledger
    database port", not "… port 5432"), since freshness asks for the question's values in
    both sentences."""
    rest = sentence.lower()
    for value in sorted(freshness.values(sentence), key=len, reverse=True):
        rest = rest.replace(value, " ")
    return rest


def _age_key(doc) -> float:
    meta = doc.meta or {}
    return parse_time(meta.get("updated_at")) or parse_time(meta.get("last_ts")) or doc.mtime
