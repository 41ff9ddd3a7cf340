"""Metadata and embeddings in a SQL database (SQLite by default, any SQLAlchemy URL)."""

from kbqa.store.db import Store
from kbqa.store.tables import ChunkRow, DocumentRow, RunRow, SourceRow

__all__ = ["ChunkRow", "DocumentRow", "RunRow", "SourceRow", "Store"]
