"""SQLAlchemy tables: sources, documents, chunks (with their embeddings), ingest runs, meta."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SourceRow(Base):
    """A root that was ingested (a folder or a file); deletions are detected per source."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="files")
    root: Mapped[str] = mapped_column(String(1024), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    documents: Mapped[list[DocumentRow]] = relationship(back_populates="source")


class DocumentRow(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str] = mapped_column(String(512))
    content_hash: Mapped[str] = mapped_column(String(64))
    mtime: Mapped[float] = mapped_column(Float, default=0.0)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    # When the source itself last changed and who changed it (its git commit, its Slack
    # message or edit, the connector's own time): not when kbqa stored it (`updated_at`).
    source_updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    author: Mapped[str | None] = mapped_column(String(256), nullable=True)
    source: Mapped[SourceRow] = relationship(back_populates="documents")
    chunks: Mapped[list[ChunkRow]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="ChunkRow.position"
    )


class ChunkRow(Base):
    """A chunk; its id is the id in the vector index. The embedding is kept so the index can
    always be rebuilt without re-embedding."""

    __tablename__ = "chunks"
    # Never reuse a deleted chunk's id: a stale vector under a reused id would look consistent.
    __table_args__: ClassVar = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(String(1024), default="")
    text: Mapped[str] = mapped_column(Text)
    # sha256 of the embedded text: lets a renamed or edited file reuse stored embeddings.
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    document: Mapped[DocumentRow] = relationship(back_populates="chunks")


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # running -> ok | failed (an error, in `error`) | interrupted (Ctrl-C, or found "running"
    # after the process that ran it was gone: see Store._close_interrupted_runs)
    status: Mapped[str] = mapped_column(String(16), default="running")
    roots: Mapped[list[str]] = mapped_column(JSON, default=list)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The process running it: {"host", "pid", "started"} (see store/db.py process_identity).
    owner: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class MetaRow(Base):
    """Key/value facts about the store, such as the embedding model and its dimension."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FeedbackRow(Base):
    """A 👍 or 👎 on an answer, with what was asked and answered."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    value: Mapped[int] = mapped_column(Integer)  # +1 or -1
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    user: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    message_ts: Mapped[str] = mapped_column(String(32), default="")
    # Given where only some may read (a private channel, a DM); None: not known (older rows).
    private: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class SlackCursorRow(Base):
    """How far `kbqa sync slack` has read each channel (Slack ts, kept as a string)."""

    __tablename__ = "slack_cursors"
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    last_ts: Mapped[str] = mapped_column(String(32))


class ConnectorCursorRow(Base):
    """Per `[[sources]]` entry: the connector's cursor (stored only after the items it covers
    are) and how its last sync went, for `kbqa sync` and the admin page."""

    __tablename__ = "connector_cursors"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    # "ok", "partial" (a listing that was not complete, or items that failed), "failed"
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The process syncing it now (host, pid, start), so another process does not sync it too.
    owner: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class HandledEventRow(Base):
    """Messages the bot has answered, so a redelivered event is answered once."""

    __tablename__ = "slack_handled"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TokenRow(Base):
    """An API token of `kbqa serve`: only its SHA-256 is stored, with the sources it may see."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the secret, so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Connector principals ("confluence-space:ENG") whose restricted documents it may see.
    principals: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
