"""Who is calling: an API token (Authorization: Bearer, or the page's cookie) is an audience
restricted to its sources; a request from this machine needs none when settings allow it."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from fastapi import Request

from kbqa.client import is_local_secret
from kbqa.retrieval.access import Audience
from kbqa.serve.errors import ApiError

COOKIE = "kbqa_token"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True)
class Caller:
    name: str  # the token's name, or "local"
    audience: Audience | None  # None: sees everything, as the command line does
    admin: bool

    @property
    def searches(self) -> tuple[str, ...]:
        """The sources this caller's token is limited to; () when it may see everything."""
        return self.audience.sources if self.audience else ()


LOCAL = Caller("local", None, True)


def is_loopback(request: Request) -> bool:
    """A request from this machine, addressed to this machine by a loopback name (so a web
    page elsewhere cannot reach it through DNS rebinding), and not forwarded by a proxy."""
    if request.client is None or "x-forwarded-for" in request.headers:
        return False
    try:
        if not ip_address(request.client.host).is_loopback:
            return False
    except ValueError:
        return False
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in _LOCAL_HOSTS


def secret_of(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "the Authorization header must be 'Bearer TOKEN'", "bad_auth")
        return value.strip()
    return request.cookies.get(COOKIE, "")


def identify(request: Request) -> Caller:
    """The caller, or a 401 ApiError. From this machine (while settings allow it) a valid token
    still restricts the caller to its sources, and any other key is ignored: OpenAI's clients
    cannot send none."""
    core = request.app.state.core
    secret = secret_of(request)
    if secret and is_local_secret(secret, getattr(request.app.state, "local_secret", "")):
        return LOCAL  # the command line on this home (the secret is in a file only it reads)
    token = core.token(secret) if secret else None
    if token is not None:
        audience = Audience.for_token(token.name, token.sources, token.principals, token.admin)
        return Caller(token.name, audience, token.admin)
    if core.settings.allow_loopback_without_token and is_loopback(request):
        return LOCAL
    if secret:
        raise ApiError(
            401, f"the API token is not valid (unknown or revoked); {_MAKE_ONE}", "bad_token"
        )
    raise ApiError(
        401, f"an API token is needed: send 'Authorization: Bearer TOKEN'; {_MAKE_ONE}", "no_token"
    )


_MAKE_ONE = "an administrator makes one with `kbqa token create --name NAME`"


def caller(request: Request) -> Caller:
    """FastAPI dependency: the identified caller."""
    return identify(request)


def admin(request: Request) -> Caller:
    """FastAPI dependency: a caller allowed to see the admin pages."""
    who = identify(request)
    if not who.admin:
        raise ApiError(403, f"token {who.name!r} is not an admin token (kbqa token create --admin)")
    return who
