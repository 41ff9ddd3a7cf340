"""What the generation queue's tests share: a slow fake generator and a question that holds the
model until released."""

import threading
import time

from kbqa.assistant.generator import EchoGenerator
from kbqa.assistant.queue import GenerationQueue


class SlowGenerator(EchoGenerator):
    """The echo answer written a word every `delay` seconds; counts how many requests run at
    once, and which were finished or stopped early."""

    concurrent = True

    def __init__(self, delay: float = 0.02):
        self.delay = delay
        self.lock = threading.Lock()
        self.running = self.most = self.finished = self.stopped = 0

    def stream(self, messages, max_new_tokens: int = 96):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            for word in self.generate(messages, max_new_tokens).split(" "):
                time.sleep(self.delay)
                yield word + " "
            with self.lock:
                self.finished += 1
        except GeneratorExit:
            with self.lock:
                self.stopped += 1
            raise
        finally:
            with self.lock:
                self.running -= 1


MESSAGES = [{"role": "user", "content": "Source [1]: a\n<passage>\nThe port is 8080.\n</passage>"}]


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Holder:
    """A question that holds the model until released."""

    def __init__(self, queue: GenerationQueue, channel: str = "holder"):
        self.release = threading.Event()
        self.ticket = queue.take(channel)
        self.running = threading.Event()

        def hold() -> None:
            with queue.turn(self.ticket):
                self.running.set()
                self.release.wait(10)
            queue.give_back(self.ticket)

        self.thread = threading.Thread(target=hold, daemon=True)
        self.thread.start()
        assert self.running.wait(5)
