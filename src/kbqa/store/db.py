"""Opening the database and the few queries every layer needs."""

from __future__ import annotations

import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, event, func, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SAWarning, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from kbqa.errors import ConfigError
from kbqa.store.tables import (
    Base,
    ChunkRow,
    DocumentRow,
    FeedbackRow,
    HandledEventRow,
    MetaRow,
    RunRow,
)

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL keeps readers (a Slack bot) working while an ingest writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Store:
    """The database behind kbqa. Sessions come from `session()`; commits are explicit."""

    def __init__(self, url: str, busy_seconds: float = 30.0):
        # SQLite: a writer waits this long for another's lock, then "database is locked".
        connect_args = {"timeout": busy_seconds} if url.startswith("sqlite") else {}
        try:
            self.engine: Engine = create_engine(url, connect_args=connect_args)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise ConfigError(f"database_url: cannot use {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            Base.metadata.create_all(self.engine)
            _add_missing_columns(self.engine)
        except SQLAlchemyError as exc:
            raise ConfigError(f"database_url: cannot open {url!r}: {exc}") from exc
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self._close_interrupted_runs()

    def _close_interrupted_runs(self) -> None:
        """Mark `interrupted` the runs left `running` by a process that is gone (killed, or
        its machine rebooted); runs of live processes, and of other machines, are left alone."""
        try:
            with self.session() as s:
                running = s.execute(
                    select(RunRow.id, RunRow.owner).where(RunRow.status == "running")
                ).all()
                dead = [run_id for run_id, owner in running if not owner_alive(owner)]
                if dead:
                    s.execute(
                        update(RunRow)
                        .where(RunRow.id.in_(dead), RunRow.status == "running")
                        .values(status="interrupted", error="the process running it was gone")
                    )
                    s.commit()
        except OperationalError as exc:  # housekeeping: a busy database must not stop a reader
            log.warning("could not check for interrupted ingest runs: %s", exc)

    def get_meta(self, key: str) -> str | None:
        with self.session() as s:
            row = s.get(MetaRow, key)
            return row.value if row else None

    def set_meta(self, session: Session, key: str, value: str) -> None:
        """Insert or update one fact, as one statement: Spark executors writing their first
        batches at once each set the embedder, and a read-then-insert (`merge`) of two of them
        collided on the key (seen in CI: "duplicate key value violates meta_pkey")."""
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            session.merge(MetaRow(key=key, value=value))
            return
        upsert = insert(MetaRow).values(key=key, value=value)
        session.execute(upsert.on_conflict_do_update(index_elements=["key"], set_={"value": value}))

    def chunk_ids(self) -> np.ndarray:
        with self.session() as s:
            return np.array(s.scalars(select(ChunkRow.id)).all(), dtype=np.int64)

    def embeddings(self, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of stored chunks, all of them or those in `ids`."""
        query = select(ChunkRow.id, ChunkRow.embedding).order_by(ChunkRow.id)
        rows: list = []
        with self.session() as s:
            if ids is None:
                rows = list(s.execute(query))
            else:
                # Chunked IN clauses: SQLite limits the number of bound parameters.
                for start in range(0, len(ids), 500):
                    part = [int(i) for i in ids[start : start + 500]]
                    rows.extend(s.execute(query.where(ChunkRow.id.in_(part))))
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        out_ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return out_ids, vectors

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            return {
                "documents": s.scalar(select(func.count(DocumentRow.id))) or 0,
                "chunks": s.scalar(select(func.count(ChunkRow.id))) or 0,
            }

    def claim(self, key: str) -> bool:
        """Record `key` once; False when it was already recorded (by any process)."""
        with self.session() as s:
            s.add(HandledEventRow(key=key))
            try:
                s.commit()
            except IntegrityError:
                return False
        return True

    def add_feedback(
        self,
        value: int,
        question: str,
        answer: str,
        citations: list[dict[str, Any]],
        user: str,
        channel: str,
        message_ts: str,
        private: bool | None,
    ) -> int:
        """Store a feedback row (ids cut to their columns' widths); returns its id."""
        with self.session() as s:
            row = FeedbackRow(
                value=value,
                question=question,
                answer=answer,
                citations=list(citations),
                user=user[:64],
                channel=channel[:64],
                message_ts=message_ts[:32],
                private=private,
            )
            s.add(row)
            s.commit()
            return row.id

    def last_run(self) -> RunRow | None:
        with self.session() as s:
            return s.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(1)).first()


def _add_missing_columns(engine: Engine) -> None:
    """Add columns that a newer kbqa declares to tables an older one created (nullable ones
    only, so existing rows stay valid)."""
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name not in existing:
                continue
            with warnings.catch_warnings():
                # pgvector's `vector` column (store/pgschema.py) is unknown to SQLAlchemy.
                warnings.filterwarnings("ignore", "Did not recognize type", SAWarning)
                have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    add = f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'
                    conn.execute(text(add))


def _start_token(pid: int) -> str:
    """What tells this process from a later one with the same pid: the boot and the start
    time in clock ticks (Linux /proc); "" where that cannot be read."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22, counted after the command name, which may itself contain spaces or ")".
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def process_identity() -> dict[str, Any]:
    """This process, as a run records its owner."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _start_token(pid)}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return True


def owner_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the process that recorded `owner` may still be running. A run of another
    machine sharing the database counts as alive: from here it cannot be told."""
    if not owner:
        return False  # an older kbqa's run, from before owners were recorded
    if owner.get("host") != socket.gethostname():
        return True
    pid = int(owner.get("pid") or 0)
    if not pid_alive(pid):
        return False
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # killed, not yet reaped by its parent
    except (OSError, IndexError):
        pass
    started = owner.get("started") or ""
    return not started or _start_token(pid) in ("", started)
