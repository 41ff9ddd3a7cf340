"""A loopback HTTP server for the web, Drive and Notion mocks: a call log and injected faults
(a status with headers, served a number of times before the real answer comes back)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from loopback import Served


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    prefix: str  # the request path (with its query) this fault answers when it starts so
    reply: Reply
    times: int
    skip: int = 0  # matching requests answered normally before the fault starts


class MockService(Served):
    """Subclasses answer `serve(call) -> Reply`; tests read `.calls` and add faults with
    `fail(prefix, status, headers, times)`."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self.lock = threading.RLock()

    def serve(self, call: Call) -> Reply:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def calls(self) -> list[Call]:
        with self.lock:
            return list(self._calls)

    def paths(self, prefix: str = "") -> list[str]:
        """The paths called (without query), oldest first, those starting with `prefix`."""
        return [c.path for c in self.calls if c.path.startswith(prefix)]

    def clear_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    def fail(
        self,
        prefix: str,
        status: int,
        headers: dict[str, str] | None = None,
        times: int = 1,
        body: bytes = b"",
        skip: int = 0,
    ) -> None:
        """Answer `times` requests whose path starts with `prefix` with `status`, after
        letting `skip` of them through."""
        with self.lock:
            reply = Reply(status, body, dict(headers or {}))
            self._faults.append(Fault(prefix, reply, times, skip))

    def answer(self, call: Call) -> Reply:
        with self.lock:
            self._calls.append(call)
            full = call.path + (
                "?" + "&".join(f"{k}={v}" for k, v in call.query.items()) if call.query else ""
            )
            for fault in self._faults:
                if fault.times > 0 and full.startswith(fault.prefix):
                    if fault.skip:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return fault.reply
            return self.serve(call)


class _Handler(BaseHTTPRequestHandler):
    service: MockService
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.service.answer(Call(method, parts.path, query, headers, body))
        self.send_response(reply.status)
        names = {k.lower() for k in reply.headers}
        for name, value in reply.headers.items():
            self.send_header(name, str(value))
        if "content-type" not in names and reply.body:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


# The handler is defined after the mock it serves.
MockService.handler, MockService.handler_attr = _Handler, "service"
