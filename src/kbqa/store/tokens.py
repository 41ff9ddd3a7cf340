"""API tokens: a random secret shown once, stored only as its SHA-256, with the sources the
token's holder may see."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kbqa.errors import KbqaError
from kbqa.store.db import Store
from kbqa.store.tables import TokenRow, utcnow

PREFIX = "kbqa_"


@dataclass(frozen=True)
class TokenInfo:
    name: str
    prefix: str
    sources: tuple[str, ...]
    admin: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool
    # Connector principals ("confluence-space:ENG") whose restricted documents it may see.
    principals: tuple[str, ...] = ()


def digest(secret: str) -> str:
    # The secrets are 256 random bits: a plain hash cannot be brute-forced, no salt is needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(
        row.name,
        row.prefix,
        tuple(row.sources or ()),
        bool(row.admin),
        row.created_at,
        row.last_used_at,
        row.revoked_at is not None,
        tuple(row.principals or ()),
    )


def create(
    store: Store, name: str, sources: list[str], admin: bool = False, principals: list[str] = ()
) -> tuple[str, TokenInfo]:
    """(the secret, to show once, and the token) for a new token named `name`."""
    name = name.strip()
    if not name:
        raise KbqaError("a token needs a --name")
    if any(not p.strip() for p in sources):
        raise KbqaError("a --sources pattern cannot be empty")
    if any(":" not in p.strip(":") for p in principals):
        raise KbqaError("a --principal is KIND:SCOPE, e.g. confluence-space:ENG")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = TokenRow(
        name=name,
        digest=digest(secret),
        prefix=secret[: len(PREFIX) + 4],
        sources=sources,
        principals=[p.strip() for p in principals],
        admin=admin,
    )
    with store.session() as s:
        s.add(row)
        try:
            s.commit()
        except IntegrityError:
            raise KbqaError(f"a token named {name!r} exists already: revoke it first") from None
        return secret, _info(row)


def listed(store: Store) -> list[TokenInfo]:
    with store.session() as s:
        return [_info(r) for r in s.scalars(select(TokenRow).order_by(TokenRow.id))]


def revoke(store: Store, name: str) -> None:
    with store.session() as s:
        row = s.scalar(select(TokenRow).where(TokenRow.name == name))
        if row is None:
            raise KbqaError(f"no token named {name!r} (kbqa token list shows them)")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            s.commit()


def find(store: Store, secret: str) -> TokenInfo | None:
    """The live token with this secret, or None; records when it was last used."""
    if not secret.startswith(PREFIX):
        return None
    with store.session() as s:
        row = s.scalar(select(TokenRow).where(TokenRow.digest == digest(secret)))
        if row is None or row.revoked_at is not None:
            return None
        now = utcnow()
        last = row.last_used_at
        # At most one write a minute per token, so a busy client does not write on each call.
        if (
            last is None
            or (now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo))).total_seconds()
            > 60
        ):
            row.last_used_at = now
            s.commit()
        return _info(row)
