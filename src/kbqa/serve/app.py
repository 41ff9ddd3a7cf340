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

from kbqa.serve import api, chat, errors, files, pages
from kbqa.serve.schedule import SyncScheduler

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def create_app(core, slack: Any = None, ask_workers: int = 4, slack_workers: int = 8) -> FastAPI:
    """The service over `core`. `slack`, a Bolt App, is served at POST /slack/events.
    At most `ask_workers` questions are worked on at once (the rest wait their turn), and
    Slack's events are dispatched by workers of their own, so they are acknowledged at once
    however many questions are queued."""
    app = FastAPI(
        title="kbqa",
        summary="Cited answers from your own docs and Slack threads",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.core = core
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
    return app


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
