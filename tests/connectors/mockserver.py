"""A loopback HTTP server base for the connectors' mocks: routes by regular expression, a call
log, credentials checked on every call, and faults queued per path (a 429 with or without
Retry-After, a 5xx) served before the real answer."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import Served


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    status: int = 0


Route = Callable[..., Reply]


class MockServer(Served):
    """Subclasses register routes with `route(method, pattern, handler)`; a handler gets the
    regex groups and the query params and returns a Reply."""

    def __init__(self, user: str = "bot@acme.test", token: str = "api-token-123456") -> None:
        self.user, self.token = user, token
        self.routes: list[tuple[str, re.Pattern, Route]] = []
        self.faults: list[tuple[str, Reply]] = []  # (path regex, reply): served once each
        self.lock = threading.RLock()
        self._calls: list[Call] = []

    # -- the fixture side -----------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fail(self, pattern: str, status: int, times: int = 1, headers=None, body=None) -> None:
        """The next `times` calls whose path matches `pattern` get this error instead."""
        with self.lock:
            for _ in range(times):
                self.faults.append((pattern, Reply(status, body, dict(headers or {}))))

    @property
    def calls(self) -> list[Call]:
        with self.lock:
            return list(self._calls)

    def count(self, pattern: str = ".*") -> int:
        return sum(1 for c in self.calls if re.search(pattern, c.path))

    def clear_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    @property
    def url(self) -> str:
        return self.base_url

    # -- the server side ------------------------------------------------------------------
    def authorized(self, header: str) -> bool:
        basic = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        return header in (f"Basic {basic}", f"Bearer {self.token}")

    def unauthorized(self) -> Reply:
        return Reply(401, {"message": "Client must be authenticated to access this resource."})

    def not_found(self, what: str = "") -> Reply:
        return Reply(404, {"message": f"No content found{f' with id {what}' if what else ''}"})

    def answer(self, method: str, target: str, auth: str) -> Reply:
        parts = urlsplit(target)
        # A repeated parameter (?spaceKey=A&spaceKey=B) arrives joined by commas.
        params = {k: ",".join(v) for k, v in parse_qs(parts.query).items()}
        call = Call(method, parts.path, params)
        with self.lock:
            self._calls.append(call)
            fault = next((f for f in self.faults if re.search(f[0], parts.path)), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None:
            reply = fault[1]
        elif not self.authorized(auth):
            reply = self.unauthorized()
        else:
            reply = None
            for verb, pattern, handler in self.routes:
                match = pattern.match(parts.path)
                if verb == method and match:
                    with self.lock:
                        reply = handler(*match.groups(), params=params)
                    break
            reply = reply or self.not_found()
        call.status = reply.status
        return reply


class _Handler(BaseHTTPRequestHandler):
    mock: MockServer

    def _serve(self, method: str) -> None:
        reply = self.mock.answer(method, self.path, self.headers.get("Authorization", ""))
        body = reply.body
        if isinstance(body, bytes):
            data, kind = body, "application/octet-stream"
        elif body is None:
            data, kind = b"", "text/plain"
        else:
            data, kind = json.dumps(body).encode(), "application/json"
        self.send_response(reply.status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._serve("POST")

    def log_message(self, *args: object) -> None:
        pass


# The handler is defined after the mock it serves.
MockServer.handler = _Handler


def page_of(items: list, params: dict[str, str], max_page: int = 25) -> tuple[list, str | None]:
    """One page of `items` from the opaque `cursor` param, at most `limit` (and at most
    `max_page`: a service returns short pages); the next cursor or None."""
    start = int(base64.urlsafe_b64decode(params["cursor"]).decode()) if params.get("cursor") else 0
    size = min(int(params.get("limit", max_page)), max_page)
    chunk = items[start : start + size]
    end = start + len(chunk)
    return chunk, (
        base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    )
