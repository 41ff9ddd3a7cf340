"""The FastAPI app: built by `create_app(core)` around a core (KnowledgeBase) that it only
calls; the HTTP layer holds no state of its own beyond two worker limits."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kbqa.client import announce, is_local_secret, withdraw
from kbqa.errors import KbqaError
from kbqa.serve import api, chat, errors, files, pages
from kbqa.serve.schedule import SyncScheduler

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def create_app(
    core, slack: Any = None, ask_workers: int = 4, slack_workers: int = 8, local_secret: str = ""
) -> FastAPI:
    """The service over `core`. `slack`, a Bolt App, is served at POST /slack/events.
    At most `ask_workers` questions are worked on at once (the rest wait their turn), and
    Slack's events are dispatched by workers of their own, so they are acknowledged at once
    however many questions are queued. `local_secret`, sent as a bearer token, makes a caller
    local (the command line on this home: see kbqa/client.py and `run`)."""
    app = FastAPI(
        title="kbqa",
        summary="Cited answers from your own docs and Slack threads",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.core = core
    app.state.local_secret = local_secret
    app.state.ask_limiter = anyio.CapacityLimiter(ask_workers)
    app.state.slack_limiter = anyio.CapacityLimiter(slack_workers)
    # Connector syncs on their schedules (started by `kbqa serve`) and the admin's "sync now".
    app.state.syncs = SyncScheduler(core)
    errors.install(app)
    app.include_router(api.router)
    app.include_router(chat.router)
    app.include_router(pages.router)
    app.include_router(files.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(LimitedBody, limit=core.settings.max_request_bytes)
    app.add_middleware(RequestLog)
    if slack is not None:
        _mount_slack(app, slack)

    @app.get("/api/health", include_in_schema=False)
    async def health(request: Request):
        # Answered at once, by no worker: `kbqa ask` checks it before asking (0.5 s at most).
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return {"ok": True, "local": is_local_secret(given, request.app.state.local_secret)}

    return app


def run(app: FastAPI, host: str, port: int, home: Path) -> None:
    """Serve `app` on host:port, announced under `home` (kbqa/client.py) while it runs: the
    socket is bound first, so the file never names a port this process does not hold."""
    import signal
    import socket
    import sys
    import threading

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise KbqaError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    path, secret = announce(home, host, sock.getsockname()[1])
    app.state.local_secret = secret
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down on SIGTERM, then raises it again with this handler back in place:
        # exit through `finally`, so the file goes too.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        withdraw(path, secret)
        sock.close()


def _mount_slack(app: FastAPI, bolt) -> None:
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request):
        body = await request.body()
        # Bolt verifies the signature, acknowledges and hands the listener to its own threads.
        response = await anyio.to_thread.run_sync(
            bolt.dispatch, to_bolt_request(request, body), limiter=app.state.slack_limiter
        )
        return to_starlette_response(response)


class RequestLog:
    """One line per request in the server's log: method, path, status, milliseconds, client.
    The query string is left out (it may hold a search)."""

    log = logging.getLogger("kbqa.serve.requests")

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            ms = (time.perf_counter() - started) * 1000
            client = (scope.get("client") or ("?",))[0]
            self.log.info("%s %s %d %.0f ms %s", scope["method"], scope["path"], status, ms, client)


class LimitedBody:
    """Refuses a request body over `limit` bytes with 413, by its Content-Length or, for a
    chunked body, once that many bytes have arrived. Everything else passes to `app`."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # within the limit, and the server holds to it
            return
        # No Content-Length (a chunked body): read it here, at most `limit` bytes, then replay it.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                await self._too_large(send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _message(self) -> str:
        return f"the request body is over {self.limit} bytes"

    async def _too_large(self, send: Send) -> None:
        response = errors.respond(413, self._message(), "request_too_large")
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
