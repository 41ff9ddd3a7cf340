"""The generation queue (assistant/queue.py): its bound, its fair order across channels, groups
of at most `slots`, cancellation, and its shared state under many threads at once."""

import threading
import time

import pytest
from queue_support import MESSAGES, Holder, SlowGenerator, wait_until

from kbqa.assistant.queue import Busy, Cancelled, GenerationQueue, Queued, bound, call


def test_beyond_its_limit_the_queue_is_busy_and_says_when_to_retry():
    queue = GenerationQueue(slots=1, limit=2, retry_after=30)
    first, second = queue.take("a"), queue.take("b")
    with pytest.raises(Busy) as busy:
        queue.take("c")
    assert busy.value.retry_after == 30
    assert "try again in a minute" in str(busy.value)
    # The command line and evaluations are never refused.
    queue.give_back(queue.take("cli", bounded=False))
    queue.give_back(first)
    queue.give_back(queue.take("c"))  # a place came free
    queue.give_back(second)
    assert queue.size() == 0


def test_a_burst_from_one_channel_leaves_half_the_queue_to_the_others():
    queue = GenerationQueue(slots=1, limit=4)
    burst = [queue.take("A"), queue.take("A")]
    with pytest.raises(Busy):
        queue.take("A")  # A holds its share: half the queue
    others = [queue.take("B"), queue.take("C")]  # so the others still find room
    with pytest.raises(Busy):
        queue.take("D")  # the queue itself is full
    queue.give_back(burst.pop())
    burst.append(queue.take("A"))  # A's own place came free
    for ticket in burst + others:
        queue.give_back(ticket)
    assert queue.size() == 0
    # A queue of one is all one channel's.
    single = GenerationQueue(slots=1, limit=1)
    single.give_back(single.take("A"))


def test_a_burst_from_one_channel_does_not_starve_another():
    queue = GenerationQueue(slots=1, limit=10)
    holder = Holder(queue)
    admitted: list[str] = []
    told: dict[str, list[int]] = {}

    def ask(name: str, channel: str) -> None:
        ticket = queue.take(channel, lambda stage, data: told[name].append(data.get("position")))
        with queue.turn(ticket):
            admitted.append(name)
        queue.give_back(ticket)

    threads = []
    for name, channel in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")]:
        told[name] = []
        threads.append(threading.Thread(target=ask, args=(name, channel)))
        threads[-1].start()
        waiting = len(threads)
        assert wait_until(lambda: len(queue.order()) == waiting)  # noqa: B023 - read at once
    assert [t.channel for t in queue.order()] == ["A", "B", "A", "A"]
    assert wait_until(lambda: told["b1"] == [2])  # b1 is told it is second, not fourth
    assert wait_until(lambda: told["a3"] == [3, 4])  # a3 was third until b1 came
    holder.release.set()
    for thread in threads:
        thread.join(5)
    assert admitted == ["a1", "b1", "a2", "a3"]
    assert told["a3"][1:] == sorted(told["a3"][1:], reverse=True)  # then it moved up
    assert queue.size() == 0


def test_an_idle_model_takes_a_question_alone_and_the_queued_ones_together():
    queue = GenerationQueue(slots=2, limit=10)
    holder = Holder(queue)  # arrived at an idle model: alone
    together = threading.Barrier(2, timeout=5)
    met: list[bool] = []

    def ask(channel: str) -> None:
        with queue.enter(channel) as ticket, queue.turn(ticket):
            together.wait()  # both are running at once
            met.append(True)

    threads = [threading.Thread(target=ask, args=(c,)) for c in "AB"]
    for thread in threads:
        thread.start()
    # Two more slots are free, but a group starts only when the model is idle.
    assert wait_until(lambda: len(queue.order()) == 2)
    time.sleep(0.1)
    assert len(queue.order()) == 2
    holder.release.set()
    for thread in threads:
        thread.join(5)
    assert met == [True, True]


def test_a_question_cancelled_while_it_waits_leaves_the_queue():
    queue = GenerationQueue(slots=1, limit=10)
    holder = Holder(queue)
    ticket = queue.take("A")
    raised: list[type] = []

    def wait() -> None:
        try:
            with queue.turn(ticket):
                raised.append(type(None))
        except Cancelled:
            raised.append(Cancelled)

    thread = threading.Thread(target=wait)
    thread.start()
    assert wait_until(lambda: len(queue.order()) == 1)
    queue.give_back(ticket)  # the client went away
    thread.join(5)
    assert raised == [Cancelled] and queue.order() == [] and queue.size() == 1
    holder.release.set()


def test_a_queued_generator_tells_its_progress_and_stops_the_model_when_cancelled():
    model = SlowGenerator(delay=0.05)
    queue = GenerationQueue(slots=1, limit=10)
    generator = Queued(model, queue)
    stages: list[str] = []
    with queue.enter("A", lambda stage, data: stages.append(stage)) as ticket:
        text = call(ticket, generator.generate, MESSAGES)
    assert text == "The port is 8080. [1]"
    assert stages == ["reading", "writing"]

    ticket = queue.take("A")
    pieces = bound(ticket, generator.stream(MESSAGES))
    assert next(pieces) == "The "
    ticket.cancel()
    with pytest.raises(Cancelled):
        list(pieces)
    assert model.stopped == 1 and model.finished == 1  # only the first request finished
    queue.give_back(ticket)


def test_many_questions_at_once_never_exceed_the_slots_and_all_are_answered():
    model = SlowGenerator(delay=0.002)
    queue = GenerationQueue(slots=3, limit=100)
    generator = Queued(model, queue)
    answers: list[str] = []
    lock = threading.Lock()

    def ask(i: int) -> None:
        with queue.enter(f"channel-{i % 4}") as ticket:
            text = call(ticket, generator.generate, MESSAGES)
        with lock:
            answers.append(text)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers == ["The port is 8080. [1]"] * 40
    assert 1 < model.most <= 3
    assert queue.size() == 0 and queue.order() == [] and model.running == 0


def test_slots_and_the_queue_limit_must_be_at_least_one():
    from kbqa.errors import ConfigError
    from kbqa.settings import Settings

    for key in ("generator_slots", "queue_limit", "queue_retry_seconds"):
        with pytest.raises(ConfigError, match=key):
            Settings.load(environ={}, **{key: 0})


def test_the_queue_says_whether_its_model_holds_replies_to_a_grammar():
    # The wrapper has `point` for every model; the pointer path must still know that a
    # transformers model (no grammars) writes the format freely rather than treat it as a
    # llama.cpp reply that ignored its grammar.
    from kbqa.assistant.generator import EchoGenerator

    class Plain:
        name = "plain"

        def generate(self, messages, max_new_tokens=96):
            return "[1] x"

    queue = GenerationQueue()
    assert Queued(EchoGenerator(), queue).takes_grammar
    assert not Queued(Plain(), queue).takes_grammar


def test_the_queue_hands_a_line_completer_only_to_a_model_that_takes_one():
    class Filling:
        name = "filling"

        def point(self, messages, grammar, max_new_tokens=64, fill=None):
            yield ("filled" if fill else "plain"), []

    class Whole:
        name = "whole"

        def point(self, messages, grammar, max_new_tokens=64):
            yield "whole", []

    queue, fill = GenerationQueue(), lambda reply: None
    assert [t for t, _ in Queued(Filling(), queue).point([], "", 8, fill)] == ["filled"]
    assert [t for t, _ in Queued(Filling(), queue).point([], "", 8)] == ["plain"]
    assert [t for t, _ in Queued(Whole(), queue).point([], "", 8, fill)] == ["whole"]
