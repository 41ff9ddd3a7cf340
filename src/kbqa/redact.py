"""Secrets out of text meant for people: Slack tokens, API tokens, passwords in database URLs
and any value a caller names (a signing secret has no recognisable shape)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_PATTERNS = [
    (re.compile(r"\b(xox[abposre])-[A-Za-z0-9-]+"), rf"\1-{MASK}"),
    (re.compile(r"\b(xapp)-[A-Za-z0-9-]+"), rf"\1-{MASK}"),
    (re.compile(r"\b(kbqa_)[A-Za-z0-9_-]{8,}"), rf"\1{MASK}"),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.I), rf"\1{MASK}@"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{MASK}"),
]


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` with every recognisable secret, and each of `known`, replaced by ***."""
    for secret in known:
        if secret and len(secret) >= 6:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_url(url: str) -> str:
    """A URL with its password (if any) masked: postgresql://kbqa:***@db/kbqa."""
    return _PATTERNS[3][0].sub(_PATTERNS[3][1], url)
