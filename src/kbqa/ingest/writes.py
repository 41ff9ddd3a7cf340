"""Writing documents to the database: one batch of documents with their chunks and embeddings
in one transaction (the local ingest's and a Spark executor's alike), reusing the vectors of
chunk texts already embedded, and deleting documents with everything that hangs off them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kbqa.clock import parse_time
from kbqa.store import ChunkRow, DocumentRow, Store
from kbqa.types import Document


@dataclass
class Stored:
    """What `store_documents` wrote: the replaced chunks' ids and the new rows."""

    old_ids: list[int]
    rows: list[ChunkRow]
    added: int
    updated: int


def stored_vectors(session: Session, hashes: list[str]) -> dict[str, bytes]:
    """The stored embedding of each chunk text hash the database has (text hash -> bytes)."""
    known: dict[str, bytes] = {}
    for start in range(0, len(hashes), 500):
        part = hashes[start : start + 500]
        rows = session.execute(
            select(ChunkRow.text_hash, ChunkRow.embedding).where(ChunkRow.text_hash.in_(part))
        )
        known.update({h: e for h, e in rows})
    return known


def store_documents(
    session: Session,
    docs: list[tuple[Document, int | None]],
    source_id: int,
    embedded: list[tuple[str, bytes]],
) -> Stored:
    """Write documents (each with its existing row's id, or None) and their chunks, with one
    (text hash, vector bytes) per chunk in order, into `session` (not committed). A replaced
    document's old chunks are deleted. The local ingest and Spark's executors both write so."""
    vectors = iter(embedded)
    out = Stored([], [], 0, 0)
    for doc, existing_id in docs:
        if existing_id is not None:
            row = session.get(DocumentRow, existing_id)
            out.old_ids += session.scalars(
                select(ChunkRow.id).where(ChunkRow.document_id == row.id)
            ).all()
            session.execute(delete(ChunkRow).where(ChunkRow.document_id == row.id))
            out.updated += 1
        else:
            row = DocumentRow(uri=doc.uri)
            session.add(row)
            out.added += 1
        row.source_id = source_id
        row.title = doc.title
        row.content_hash = doc.content_hash
        row.mtime = doc.mtime
        row.meta = doc.metadata
        stamp = parse_time(doc.metadata.get("updated_at")) or doc.mtime
        row.source_updated_at = datetime.fromtimestamp(stamp, UTC) if stamp else None
        row.author = str(doc.metadata.get("author") or "")[:256] or None
        session.flush()
        for chunk in doc.chunks:
            digest, vector = next(vectors)
            out.rows.append(
                ChunkRow(
                    document_id=row.id,
                    position=chunk.position,
                    heading=chunk.heading,
                    text=chunk.text,
                    text_hash=digest,
                    embedding=vector,
                )
            )
    session.add_all(out.rows)
    session.flush()  # the new rows' ids
    return out


def delete_documents(session: Session, ids: list[int]) -> None:
    session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(ids)))
    session.execute(delete(DocumentRow).where(DocumentRow.id.in_(ids)))


class Fingerprints:
    """The stored fingerprint of each document of a source, read in one query the first time
    the source is asked about: an unchanged item then costs no database round trip of its own.
    One per ingest run; a miss (new, changed, or stored under another source) says nothing."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.by_source: dict[int, dict[str, str]] = {}

    def unchanged(self, source_id: int, uri: str, digest: str) -> bool:
        if source_id not in self.by_source:
            with self.store.session() as s:
                rows = s.execute(
                    select(DocumentRow.uri, DocumentRow.content_hash).where(
                        DocumentRow.source_id == source_id
                    )
                )
                self.by_source[source_id] = {uri: fingerprint for uri, fingerprint in rows}
        return self.by_source[source_id].get(uri) == digest
