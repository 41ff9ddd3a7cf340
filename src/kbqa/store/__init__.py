"""Metadata and embeddings in a SQL database (SQLite by default, any SQLAlchemy URL)."""

from kbqa.store.db import Store
from kbqa.store.tables import (
    ChunkRow,
    ConnectorCursorRow,
    DocumentRow,
    FeedbackRow,
    HandledEventRow,
    RunRow,
    SlackCursorRow,
    SourceRow,
    TokenRow,
)

__all__ = [
    "ChunkRow",
    "ConnectorCursorRow",
    "DocumentRow",
    "FeedbackRow",
    "HandledEventRow",
    "RunRow",
    "SlackCursorRow",
    "SourceRow",
    "Store",
    "TokenRow",
]
