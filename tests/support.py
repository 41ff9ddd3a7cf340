"""Helpers shared by the tests and the benchmarks (no fixtures, no tests): a local server that
plays the Slack Web API, signed Slack events, and an ASGI app in a real uvicorn.

MockSlackApi: pass `MockSlackApi().url` as a WebClient's `base_url`. Each test sets the answers
it needs in `.responses` and reads the calls made from `.calls`. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier

from loopback import Served

SECRET = "test-signing-secret"  # the Slack signing secret the tests' apps are built with
PUBLIC, PRIVATE = "C05ENGHELP", "G05SECPRIV"  # a public and a private channel of the fixtures

Response = dict[str, Any]
Responder = list[Response] | Callable[[dict[str, Any]], Response]

_FIRST_TS = 1_700_000_000_000_000  # microseconds: the first ts handed out is 1700000000.000100


class MockSlackApi(Served):
    """The Slack Web API on 127.0.0.1, with canned answers and a record of every call."""

    def __init__(self) -> None:
        # method -> a list of responses served in order (the last repeats), or params -> response
        self.responses: dict[str, Responder] = {}
        self.users: dict[str, str] = {}  # user id -> display name, for users.info
        self._calls: list[tuple[str, dict[str, Any]]] = []
        self._served: dict[str, tuple[int, int]] = {}  # method -> (id of its list, responses used)
        self._changed = threading.Condition()
        self._ts = itertools.count(1)

    @property
    def url(self) -> str:
        return self.base_url + "/api/"

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """(method, params) of every call so far, oldest first."""
        with self._changed:
            return list(self._calls)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    def params(self, method: str) -> list[dict[str, Any]]:
        """The params of each call to `method`, oldest first."""
        return [params for name, params in self.calls if name == method]

    def wait_for(self, method: str, n: int = 1, timeout: float = 5.0) -> bool:
        """Block until `method` has been called n times; False if that took longer than timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(1 for name, _ in self._calls if name == method) >= n, timeout
            )

    def answer(self, method: str, params: dict[str, Any]) -> Response:
        """Record the call and pick its response (a copy, still with any _status/_headers)."""
        with self._changed:
            self._calls.append((method, params))
            self._changed.notify_all()
            responder = self.responses.get(method)
            if isinstance(responder, list) and responder:
                # Replacing a method's list in a test starts it again from the top.
                list_id, used = self._served.get(method, (0, 0))
                used = used if list_id == id(responder) else 0
                self._served[method] = (id(responder), used + 1)
                return dict(responder[min(used, len(responder) - 1)])
        if callable(responder):
            return dict(responder(params))
        default = _DEFAULTS.get(method)
        return default(self, params) if default else {"ok": False, "error": "unknown_method"}

    def next_ts(self) -> str:
        micros = _FIRST_TS + 100 * next(self._ts)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class _Handler(BaseHTTPRequestHandler):
    api: MockSlackApi

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        if not parts.path.startswith("/api/"):
            self.send_error(404)
            return
        params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        params.update(_parse_body(self.headers.get("Content-Type", ""), self.rfile.read(length)))
        response = self.api.answer(parts.path.removeprefix("/api/"), params)
        status = int(response.pop("_status", 200))
        headers = response.pop("_headers", {})
        if status == 429 and "ok" not in response:
            response = {"ok": False, "error": "ratelimited"}
        body = json.dumps(response).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


# The handler is defined after the mock it serves.
MockSlackApi.handler, MockSlackApi.handler_attr = _Handler, "api"


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        return json.loads(body)
    if kind == "multipart/form-data":
        # Only file uploads use multipart; their text fields are what a test checks.
        header = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + body)
        return {
            part.get_param("name", header="content-disposition"): part.get_content()
            for part in message.iter_parts()
        }
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def _auth_test(api: MockSlackApi, params: dict[str, Any]) -> Response:
    return {
        "ok": True,
        "url": "https://larkspur.slack.com/",
        "team": "Larkspur",
        "user": "kbqa",
        "team_id": "T1",
        "user_id": "UBOT",
        "bot_id": "BBOT",
    }


def _post_message(api: MockSlackApi, params: dict[str, Any]) -> Response:
    ts = api.next_ts()
    message = {"type": "message", "user": "UBOT", "bot_id": "BBOT", "ts": ts}
    message.update({k: params[k] for k in ("text", "blocks", "thread_ts") if k in params})
    return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": message}


def _update(api: MockSlackApi, params: dict[str, Any]) -> Response:
    return {
        "ok": True,
        "channel": params.get("channel"),
        "ts": params.get("ts"),
        "text": params.get("text", ""),
    }


def _users_info(api: MockSlackApi, params: dict[str, Any]) -> Response:
    user_id = params.get("user", "")
    if user_id not in api.users:
        return {"ok": False, "error": "user_not_found"}
    name = api.users[user_id]
    return {
        "ok": True,
        "user": {
            "id": user_id,
            "name": name.lower(),
            "real_name": name,
            "profile": {"display_name": name, "real_name": name},
        },
    }


def _conversations_info(api: MockSlackApi, params: dict[str, Any]) -> Response:
    channel = params.get("channel", "")
    return {
        "ok": True,
        "channel": {"id": channel, "name": channel.lower(), "is_private": channel[:1] == "G"},
    }


def _page(key: str) -> Callable[[MockSlackApi, dict[str, Any]], Response]:
    def answer(api: MockSlackApi, params: dict[str, Any]) -> Response:
        return {"ok": True, key: [], "has_more": False, "response_metadata": {"next_cursor": ""}}

    return answer


def _ok(api: MockSlackApi, params: dict[str, Any]) -> Response:
    return {"ok": True}


_DEFAULTS: dict[str, Callable[[MockSlackApi, dict[str, Any]], Response]] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "chat.postEphemeral": lambda api, params: {"ok": True, "message_ts": api.next_ts()},
    "reactions.add": _ok,
    "reactions.remove": _ok,
    "users.info": _users_info,
    "conversations.info": _conversations_info,
    "conversations.replies": _page("messages"),
    "conversations.history": _page("messages"),
    "conversations.list": _page("channels"),
}


def signed(body: str, content_type: str, timestamp: int | None = None, secret: str = SECRET):
    """A Bolt request signed as Slack signs it."""
    stamp = str(timestamp or int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    headers = {
        "content-type": [content_type],
        "x-slack-signature": [signature],
        "x-slack-request-timestamp": [stamp],
    }
    return BoltRequest(body=body, headers=headers)


def event(kind: str, text: str, channel: str = PUBLIC, ts: str = "1794600000.000100", **extra):
    """A signed Events API callback of `kind` (app_mention, message) from user U0ASKER."""
    body = {
        "token": "unused",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": f"Ev{ts.replace('.', '')}{kind}",
        "event_time": int(float(ts)),
        "authorizations": [{"user_id": "UBOT", "is_bot": True, "team_id": "T1"}],
        "event": {
            "type": kind,
            "user": "U0ASKER",
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            **extra,
        },
    }
    return signed(json.dumps(body), "application/json")


class Server:
    """An ASGI app in a real uvicorn on 127.0.0.1 (a free port), in a thread."""

    def __init__(self, app):
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
