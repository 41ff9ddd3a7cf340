"""What a docs owner fixes first: the sources not updated for `stale_after_days` that ground
the most rated answers (the store records, per 👍/👎, the sources the answer cited; no other
answer is recorded), and the pairs of sources that give different values for the same thing
(assistant/freshness.py's comparison, each source's passages against their nearest
neighbours in other documents). `kbqa stale` prints it; the admin page shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from kbqa.assistant import freshness
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
    with kb.store.session() as s:
        docs = s.execute(
            select(
                DocumentRow.uri,
                DocumentRow.title,
                DocumentRow.source_updated_at,
                DocumentRow.mtime,
                DocumentRow.author,
                DocumentRow.meta,
            )
        ).all()
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


def _stamp(updated, mtime: float, meta: dict) -> float:
    if updated is not None:
        return parse_time(updated)
    return parse_time(meta.get("updated_at")) or parse_time(meta.get("last_ts")) or mtime


def conflicts(kb: KnowledgeBase, limit: int = 20) -> list[Conflict]:
    """Pairs of sources that disagree, found by comparing the passages of the oldest documents
    with their nearest passages in other documents (at most SCANNED passages)."""
    retriever = kb.retriever.pinned()
    snapshot = retriever.snapshot
    chunks = sorted(snapshot.chunks.items(), key=lambda item: _age_key(item[1].document))
    found: dict[tuple[str, str], Conflict] = {}
    for chunk_id, _info in chunks[:SCANNED]:
        [hit] = snapshot.hits([chunk_id], [1.0])
        others = [h for h in retriever.search(hit.text, NEIGHBOURS + 1) if h.uri != hit.uri]
        for d in freshness.find(hit.text, [hit, *others]):
            key = (d.newer.uri, d.older.uri)
            if key not in found and len(found) < limit:
                found[key] = Conflict(
                    d.newer.uri, d.newer.title, iso(d.newer.updated_at), d.newer_sentence,
                    d.older.uri, d.older.title, iso(d.older.updated_at), d.older_sentence,
                )  # fmt: skip
        if len(found) >= limit:
            break
    return list(found.values())


def _age_key(doc) -> float:
    meta = doc.meta or {}
    return parse_time(meta.get("updated_at")) or parse_time(meta.get("last_ts")) or doc.mtime
