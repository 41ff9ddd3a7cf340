"""Opening the database and the few queries every layer needs."""

from __future__ import annotations

import logging

import numpy as np
from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from kbqa.errors import ConfigError
from kbqa.store.tables import (
    Base,
    ChunkRow,
    DocumentRow,
    HandledEventRow,
    MetaRow,
    RunRow,
    add_missing_columns,
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

    def __init__(self, url: str):
        try:
            self.engine: Engine = create_engine(url)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise ConfigError(f"database_url: cannot use {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            Base.metadata.create_all(self.engine)
            add_missing_columns(self.engine)
        except SQLAlchemyError as exc:
            raise ConfigError(f"database_url: cannot open {url!r}: {exc}") from exc
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self._close_interrupted_runs()

    def _close_interrupted_runs(self) -> None:
        with self.session() as s:
            s.execute(update(RunRow).where(RunRow.status == "running").values(status="interrupted"))
            s.commit()

    def get_meta(self, key: str) -> str | None:
        with self.session() as s:
            row = s.get(MetaRow, key)
            return row.value if row else None

    def set_meta(self, session: Session, key: str, value: str) -> None:
        session.merge(MetaRow(key=key, value=value))

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

    def last_run(self) -> RunRow | None:
        with self.session() as s:
            return s.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(1)).first()
