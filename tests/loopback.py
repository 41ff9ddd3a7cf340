"""A local HTTP server on a free port of 127.0.0.1, served from a daemon thread: what every
mock of a remote service here (Slack's Web API, the connectors' services) runs on."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Loopback:
    """Start with a handler class; `port` once started; `stop` shuts it down and joins."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        # A short poll keeps shutdown (and so each test's teardown) quick.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Served:
    """A mock served on a Loopback: `start`/`stop`, a context manager, and `base_url` while
    running. A subclass names its request handler class (`handler`) and the attribute under
    which that handler finds the mock (`handler_attr`)."""

    handler: type[BaseHTTPRequestHandler]
    handler_attr = "mock"
    _loopback: Loopback | None = None

    @property
    def base_url(self) -> str:
        if self._loopback is None:
            raise RuntimeError(f"{type(self).__name__} is not running: use it as a context manager")
        return f"http://127.0.0.1:{self._loopback.port}"

    def start(self):
        handler = type("Handler", (self.handler,), {self.handler_attr: self})
        self._loopback = Loopback(handler)
        return self

    def stop(self) -> None:
        if self._loopback is not None:
            self._loopback.stop()
            self._loopback = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
