"""Read-only listings for the admin page, the API and `kbqa status`: documents, sources and
ingest runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, or_, select

from kbqa.store.db import Store
from kbqa.store.tables import ChunkRow, DocumentRow, RunRow, SourceRow
from kbqa.types import Hit


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def documents(
    store: Store,
    offset: int = 0,
    limit: int = 50,
    query: str = "",
    kind: str = "",
    visible: Callable[[Hit], bool] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, the page from `offset`): documents, newest first."""
    chunks = (
        select(ChunkRow.document_id, func.count(ChunkRow.id).label("n"))
        .group_by(ChunkRow.document_id)
        .subquery()
    )
    statement = (
        select(DocumentRow, SourceRow.root, func.coalesce(chunks.c.n, 0))
        .join(SourceRow, DocumentRow.source_id == SourceRow.id)
        .outerjoin(chunks, chunks.c.document_id == DocumentRow.id)
        .order_by(DocumentRow.updated_at.desc(), DocumentRow.id.desc())
    )
    if query:
        like = f"%{query}%"
        statement = statement.where(or_(DocumentRow.uri.ilike(like), DocumentRow.title.ilike(like)))
    with store.session() as s:
        rows = s.execute(statement).all()
    out = []
    for doc, root, count in rows:
        meta = doc.meta or {}
        doc_kind = "slack" if meta.get("kind") == "slack" else "file"
        if kind and kind != doc_kind:
            continue
        if visible is not None and not visible(
            Hit(0, 0.0, "", "", doc.uri, doc.title, {**meta, "mtime": doc.mtime})
        ):
            continue
        out.append(
            {
                "id": doc.id,
                "uri": doc.uri,
                "title": doc.title,
                "kind": doc_kind,
                "channel": meta.get("channel"),
                "chunks": int(count),
                "mtime": doc.mtime,
                "updated_at": _iso(doc.updated_at),  # when kbqa stored it
                # The source's own time (a file's front matter or commit, a thread's last
                # message), where ingest found one: what the page's "Updated" shows.
                "source_updated_at": _iso(doc.source_updated_at),
                "source": root,
            }
        )
    return len(out), out[offset : offset + limit]


def sources(store: Store) -> list[dict[str, Any]]:
    with store.session() as s:
        rows = s.execute(
            select(SourceRow, func.count(DocumentRow.id))
            .outerjoin(DocumentRow, DocumentRow.source_id == SourceRow.id)
            .group_by(SourceRow.id)
            .order_by(SourceRow.id)
        ).all()
    return [
        {
            "root": src.root,
            "kind": src.kind,
            "documents": int(n),
            "created_at": _iso(src.created_at),
        }
        for src, n in rows
    ]


def runs(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    with store.session() as s:
        rows = s.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(limit)).all()
    out = []
    for run in rows:
        stats = run.stats or {}
        out.append(
            {
                "id": run.id,
                "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at),
                "status": run.status,
                "error": run.error or "",
                "roots": run.roots or [],
                **{k: stats.get(k, 0) for k in ("added", "updated", "unchanged", "removed")},
                "chunks": stats.get("chunks", 0),
                "seconds": round(stats.get("seconds", 0.0), 1),
                "failed": [{"file": f, "reason": why} for f, why in stats.get("failed", [])],
            }
        )
    return out


def last_run(store: Store) -> dict[str, Any] | None:
    """The latest ingest run, as `kbqa status` shows it (None before the first)."""
    run = store.last_run()
    if run is None:
        return None
    stats = run.stats or {}
    return {
        "started_at": run.started_at.isoformat(timespec="seconds"),
        "status": run.status,
        "error": run.error or "",
        "roots": run.roots,
        **{k: stats.get(k, 0) for k in ("added", "updated", "unchanged", "removed")},
        "failed": len(stats.get("failed", [])),
        "chunks": stats.get("chunks", 0),
        "seconds": round(stats.get("seconds", 0.0), 1),
    }
