"""Generated answers over HTTP through the generation queue (assistant/queue.py): a ticket per
question (503 with Retry-After when the queue is full), the ticket's progress between the
answer's pieces, and the question dropped when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from fastapi import Request

from kbqa.assistant.queue import Busy, Ticket, bound, call, describe
from kbqa.serve.errors import ApiError


async def in_worker(request: Request, function, *args: Any) -> Any:
    """Run blocking work in a worker thread, at most `ask` workers at a time, so that questions
    queue instead of starving the threads that acknowledge Slack's events."""
    return await anyio.to_thread.run_sync(function, *args, limiter=request.app.state.ask_limiter)


async def stream_in_worker(request: Request, items: Iterator) -> AsyncIterator:
    done = object()
    while True:
        item = await in_worker(request, next, items, done)
        if item is done:
            return
        yield item


def take(request: Request, channel: str, extractive: bool) -> Ticket | None:
    """A ticket for a question the model will write (none for a quoted, extractive one)."""
    if extractive:
        return None
    try:
        return request.app.state.core.queue.take(channel or "web")
    except Busy as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        raise ApiError(503, str(exc), "busy", headers=retry) from None


def give_back(request: Request, ticket: Ticket | None) -> None:
    if ticket is not None:
        request.app.state.core.queue.give_back(ticket)


async def _until_gone(request: Request, ticket: Ticket) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    ticket.cancel()


async def answered(request: Request, ticket: Ticket | None, function: Callable[[], Any]) -> Any:
    """function() in a worker thread as `ticket`'s work, cancelled if the client goes away;
    the ticket is given back after."""
    if ticket is None:
        return await in_worker(request, function)
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_until_gone, request, ticket)
            try:
                # Not limited by the workers: the queue bounds how many wait.
                result = await anyio.to_thread.run_sync(call, ticket, function)
            except Exception as exc:  # raised below, not wrapped in an exception group
                failure = exc
            group.cancel_scope.cancel()
    finally:
        give_back(request, ticket)
    if failure is not None:
        raise failure
    return result


async def relay(
    request: Request, ticket: Ticket | None, items: Iterator
) -> AsyncIterator[tuple[str, Any]]:
    """The answer's items, produced in a thread, as ("item", item), with ("progress",
    {stage, text, …}) as the ticket moves. When the response stops (the client went away)
    the ticket is cancelled and given back, and the model stops writing for it."""
    if ticket is None:
        async for item in stream_in_worker(request, items):
            yield "item", item
        return
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()

    def put(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(inbox.put_nowait, (kind, value))

    ticket.listener = lambda stage, data: put(
        "progress", {"stage": stage, "text": describe(stage, data), **data}
    )

    def produce() -> None:
        try:
            for item in bound(ticket, items):
                put("item", item)
        except BaseException as exc:  # raised where the response is written
            put("error", exc)
        finally:
            put("end", None)

    threading.Thread(target=produce, daemon=True, name="kbqa-answer").start()
    try:
        while True:
            kind, value = await inbox.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield kind, value
    finally:
        give_back(request, ticket)
