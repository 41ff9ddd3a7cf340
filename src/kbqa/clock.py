"""Times as kbqa keeps them: epoch seconds inside, ISO 8601 (UTC) in metadata and JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def iso(stamp: float) -> str:
    """Seconds since the epoch as ISO 8601 in UTC ("2024-03-08T10:00:00+00:00")."""
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def parse_time(value: Any) -> float:
    """An ISO 8601 string, a date, a datetime or epoch seconds (a Slack ts) as epoch seconds;
    0.0 when it cannot be read. A time without a zone is taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().strip("'\"")
        try:
            return float(text)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return 0.0
    else:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
