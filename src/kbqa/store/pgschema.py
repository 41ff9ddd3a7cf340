"""PostgreSQL-only schema of the pgvector backend: numbered migrations, recorded in `meta`.

SQLite stores stay exactly as they were; these columns exist only where vector_backend is
"pgvector". The `embedding` bytes stay the source of truth; `vec` and `tsv` are search copies
that `kbqa.retrieval.pgvector` fills (and repairs) from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from kbqa.errors import ConfigError
from kbqa.store.db import Store

log = logging.getLogger(__name__)

VERSION_KEY = "pg_schema_version"
DIM_KEY = "pgvector_dim"


def _vector_column(conn: Connection, dim: int) -> None:
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    conn.execute(text(f"ALTER TABLE chunks ADD COLUMN IF NOT EXISTS vec vector({int(dim)})"))
    # Inner product over unit vectors is the cosine, as in the FAISS index.
    conn.execute(
        text("CREATE INDEX IF NOT EXISTS chunks_vec_hnsw ON chunks USING hnsw (vec vector_ip_ops)")
    )


def _fulltext_column(conn: Connection, _dim: int) -> None:
    conn.execute(text("ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv tsvector"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS chunks_tsv_gin ON chunks USING gin (tsv)"))


def _source_times(conn: Connection, _dim: int) -> None:
    # Store() adds missing columns itself; here they are made sure of, with the index that
    # `kbqa stale` orders by, in the same numbered way as the other PostgreSQL-only changes.
    conn.execute(
        text("ALTER TABLE documents ADD COLUMN IF NOT EXISTS source_updated_at timestamptz")
    )
    conn.execute(text("ALTER TABLE documents ADD COLUMN IF NOT EXISTS author varchar(256)"))
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ix_documents_source_updated_at "
            "ON documents (source_updated_at)"
        )
    )


# Append only: a database records the number of the last one it ran.
MIGRATIONS: list[Callable[[Connection, int], None]] = [
    _vector_column,
    _fulltext_column,
    _source_times,
]


def ensure_schema(store: Store, dim: int) -> None:
    """Run the migrations this PostgreSQL database has not run yet (for vectors of `dim`)."""
    if store.engine.dialect.name != "postgresql":
        raise ConfigError("vector_backend 'pgvector' needs a PostgreSQL database_url")
    try:
        with store.engine.begin() as conn:
            # Replicas starting together: one migrates, the others wait and find it done.
            conn.execute(text("SELECT pg_advisory_xact_lock(7215001)"))
            rows = dict(
                conn.execute(
                    text("SELECT key, value FROM meta WHERE key IN (:v, :d)"),
                    {"v": VERSION_KEY, "d": DIM_KEY},
                ).all()
            )
            done = int(rows.get(VERSION_KEY, 0))
            stored_dim = int(rows.get(DIM_KEY, 0))
            if stored_dim and stored_dim != dim:
                raise ConfigError(
                    f"the pgvector column holds {stored_dim}-dimensional vectors, not {dim}: "
                    "use the embedding model this database was filled with"
                )
            if done >= len(MIGRATIONS):
                return
            for number, migration in enumerate(MIGRATIONS[done:], done + 1):
                log.info("PostgreSQL schema migration %d (%s)", number, migration.__name__)
                migration(conn, dim)
            for key, value in ((VERSION_KEY, len(MIGRATIONS)), (DIM_KEY, dim)):
                conn.execute(
                    text(
                        "INSERT INTO meta (key, value) VALUES (:k, :v) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                    ),
                    {"k": key, "v": str(value)},
                )
    except ConfigError:
        raise
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(
            f"database_url: cannot set up pgvector ({first}); the server needs the pgvector "
            "extension (CREATE EXTENSION vector, see the README)"
        ) from exc
