"""The generation queue: questions that need the model wait here, a bounded number, and are let
through to it in a fair order (round-robin over channels, so a burst from one channel does not
starve another), in groups of at most `slots` (docs/serving-speed.md).

An interface takes a ticket (`enter`) when a question arrives and gives it back when the answer
is done; the generator (`Queued`, wrapping the model) waits for the ticket's turn, says how far
it has got (`queued`, `reading`, `writing`) and stops when the ticket is cancelled (the client
went away). Beyond `limit` tickets, `enter` raises `Busy`.

Why groups: on a CPU, reading a prompt is bound by computation, so two prompts read together
take as long as both one after the other, and a question that arrives at an idle model is
answered fastest alone; writing is bound by reading the weights, so several answers written
together cost little more than one. The model therefore takes a question alone when it is idle,
and the questions that queued meanwhile together, up to `slots` of them, once it is free again.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kbqa.assistant.generator import takes_fill
from kbqa.errors import KbqaError

Listener = Callable[[str, dict[str, Any]], None]
BUSY_TEXT = "kbqa is busy answering other questions: try again in a minute."
# What a person sees at each stage (the page's status line, the Slack placeholder).
STAGES = {
    "queued": "Queued (position {position})…",
    "reading": "Reading the sources…",
    "writing": "Writing the answer…",
}


def describe(stage: str, data: dict[str, Any]) -> str:
    return STAGES.get(stage, stage).format(**data)


class Busy(KbqaError):
    """More questions are waiting than the queue holds."""

    def __init__(self, retry_after: int):
        super().__init__(BUSY_TEXT)
        self.retry_after = retry_after


class Cancelled(KbqaError):
    """The asker went away: the question was dropped."""


class Ticket:
    """One question's place in the queue: its channel, whether it was cancelled, and who is
    told its progress (`listener(stage, data)`: "queued" {position}, "reading", "writing")."""

    _ids = itertools.count(1)

    def __init__(self, channel: str = "", listener: Listener | None = None):
        self.id = next(self._ids)
        self.channel = channel
        self.listener = listener
        self.cancelled = threading.Event()
        self.stage = ""

    def cancel(self) -> None:
        self.cancelled.set()

    def tell(self, stage: str, **data: Any) -> None:
        self.stage = stage
        if self.listener is not None:
            # A listener (a gone client, Slack's API) must not stop an answer.
            with contextlib.suppress(Exception):
                self.listener(stage, data)


_current: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar("ticket", default=None)


def current() -> Ticket | None:
    """The ticket of the question this thread is working on, if an interface gave one."""
    return _current.get()


def bound(ticket: Ticket, items: Iterator) -> Iterator:
    """`items` (an answer being streamed) iterated as the work of `ticket`, whichever thread
    takes each step."""
    while True:
        token = _current.set(ticket)
        try:
            item = next(items, _END)
        finally:
            _current.reset(token)
        if item is _END:
            return
        yield item


def call(ticket: Ticket, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)` as the work of `ticket`."""
    token = _current.set(ticket)
    try:
        return function(*args, **kwargs)
    finally:
        _current.reset(token)


_END = object()


class GenerationQueue:
    """At most `limit` tickets at once (waiting or answered), and at most half of them from one
    channel, so that a burst from one channel leaves room for the others' questions; the model
    takes at most `slots` requests at a time, a group chosen round-robin over channels whenever
    it is idle."""

    def __init__(self, slots: int = 1, limit: int = 16, retry_after: int = 60):
        self.slots, self.limit, self.retry_after = max(1, slots), max(1, limit), retry_after
        self.share = max(1, self.limit // 2)  # the most one channel may hold
        self._lock = threading.Condition()
        self._tickets: dict[int, str | None] = {}  # ticket id -> its channel (None: unbounded)
        # channel -> its waiting tickets in arrival order; the order of the keys is the turn.
        self._waiting: OrderedDict[str, deque[Ticket]] = OrderedDict()
        self._running: set[int] = set()
        self._changes = 0  # counts changes to the order, so a waiter misses none

    def take(
        self, channel: str = "", listener: Listener | None = None, bounded: bool = True
    ) -> Ticket:
        """A ticket for one question, to `give_back` when its answer is done; `Busy` when
        `limit` are out already or its channel holds its share (`bounded=False`, for the CLI
        and evaluations: never)."""
        ticket = Ticket(channel, listener)
        with self._lock:
            if bounded:
                held = sum(1 for c in self._tickets.values() if c == channel)
                if len(self._tickets) >= self.limit or held >= self.share:
                    raise Busy(self.retry_after)
            self._tickets[ticket.id] = channel if bounded else None
        return ticket

    def give_back(self, ticket: Ticket) -> None:
        """The question is done or abandoned (again: nothing happens)."""
        ticket.cancel()  # whatever it still waits for is dropped
        with self._lock:
            self._tickets.pop(ticket.id, None)
            self._changed()

    @contextmanager
    def enter(
        self, channel: str = "", listener: Listener | None = None, bounded: bool = True
    ) -> Iterator[Ticket]:
        """`take`, given back on leaving the block."""
        ticket = self.take(channel, listener, bounded)
        try:
            yield ticket
        finally:
            self.give_back(ticket)

    def size(self) -> int:
        with self._lock:
            return len(self._tickets)

    @contextmanager
    def turn(self, ticket: Ticket) -> Iterator[None]:
        """Wait for `ticket`'s turn at the model (telling its position as it changes) and
        hold it for the block; `Cancelled` if the ticket is cancelled meanwhile."""
        with self._lock:
            self._waiting.setdefault(ticket.channel, deque()).append(ticket)
            self._changed()  # the others' positions may have moved
            self._admit()
        told = None
        while True:
            with self._lock:
                if ticket.id in self._running:
                    break
                if ticket.cancelled.is_set():
                    self._drop(ticket)
                    raise Cancelled("the question was cancelled")
                position, seen = self._position(ticket), self._changes
            # Told outside the lock: a listener may be slow (Slack's API).
            if position != told:
                ticket.tell("queued", position=position)
                told = position
            with self._lock:
                if self._changes == seen:
                    # A cancelled ticket is noticed within a second even if nobody notifies.
                    self._lock.wait(timeout=1.0)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(ticket.id)
                self._admit()

    def order(self) -> list[Ticket]:
        """The waiting tickets in the order they will be let through."""
        with self._lock:
            return self._order()

    def _order(self) -> list[Ticket]:
        queues = [list(q) for q in self._waiting.values()]
        return [t for row in itertools.zip_longest(*queues) for t in row if t is not None]

    def _position(self, ticket: Ticket) -> int:
        return 1 + [t.id for t in self._order()].index(ticket.id)

    def _drop(self, ticket: Ticket) -> None:
        waiting = self._waiting.get(ticket.channel)
        if waiting is not None and ticket in waiting:
            waiting.remove(ticket)
            if not waiting:
                del self._waiting[ticket.channel]
        self._changed()

    def _changed(self) -> None:
        self._changes += 1
        self._lock.notify_all()

    def _admit(self) -> None:
        # A new group only when the model is idle: a prompt read beside a running request
        # would delay that request's answer by the whole reading.
        if self._running:
            return
        while self._waiting and len(self._running) < self.slots:
            channel, waiting = next(iter(self._waiting.items()))
            ticket = waiting.popleft()
            # The channel served goes to the back of the turn.
            del self._waiting[channel]
            if waiting:
                self._waiting[channel] = waiting
            if ticket.cancelled.is_set():
                continue
            self._running.add(ticket.id)
        self._changed()


class Queued:
    """A generator whose requests wait for their ticket's turn in `queue`; with no ticket
    given (the CLI, evaluations) each request takes one of its own, unbounded."""

    def __init__(self, model: Any, queue: GenerationQueue):
        self._model, self.queue = model, queue
        self.name = getattr(model, "name", "")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, messages: list, max_new_tokens: int = 96) -> str:
        return "".join(self.stream(messages, max_new_tokens)).strip()

    def stream(self, messages: list, max_new_tokens: int = 96) -> Iterator[str]:
        def pieces() -> Iterator[str]:
            streaming = getattr(self._model, "stream", None)
            if streaming is None:
                yield self._model.generate(messages, max_new_tokens)
            else:
                yield from streaming(messages, max_new_tokens)

        yield from self._run(pieces)

    @property
    def takes_grammar(self) -> bool:
        """Whether the model under the queue holds its replies to a grammar (llama.cpp)."""
        return hasattr(self._model, "point")

    def point(
        self, messages: list, grammar: str, max_new_tokens: int = 64, fill: Callable | None = None
    ) -> Iterator[tuple[str, list[dict]]]:
        pointing = getattr(self._model, "point", None)
        if pointing is None:  # a backend without grammars writes the format freely
            for piece in self.stream(messages, max_new_tokens):
                yield piece, []
            return
        # The whole reply in one turn, the requests that complete its cut lines too (the
        # model's cache then still holds this prompt).
        extra = {"fill": fill} if fill is not None and takes_fill(pointing) else {}
        yield from self._run(lambda: pointing(messages, grammar, max_new_tokens, **extra))

    def _run(self, pieces: Callable[[], Iterator]) -> Iterator:
        ticket = current()
        if ticket is None:
            with self.queue.enter("", bounded=False) as own:
                yield from self._turn(own, pieces)
            return
        yield from self._turn(ticket, pieces)

    def _turn(self, ticket: Ticket, pieces: Callable[[], Iterator]) -> Iterator:
        with self.queue.turn(ticket):
            ticket.tell("reading")
            written = pieces()
            writing = False
            try:
                for piece in written:
                    if ticket.cancelled.is_set():
                        raise Cancelled("the question was cancelled")
                    if not writing:
                        ticket.tell("writing")
                        writing = True
                    yield piece
            finally:
                # Stops the model's request (LlamaCppGenerator ends it on close).
                close = getattr(written, "close", None)
                if close is not None:
                    close()
