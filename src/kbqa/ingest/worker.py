"""Parsing in a worker process, so that one hostile file costs at most a stated time and memory.

One persistent worker parses the files of an ingest, one at a time. A parse that runs past
`max_file_seconds` is stopped by killing the worker; the worker's address space is capped at its
size when ready plus `max_parse_memory_bytes`, so a parser that balloons gets a MemoryError (or
dies) instead of the machine running out. Either way the file is reported and the next one gets
a fresh worker.

On Linux a restart costs a fork, not the ~5 s of importing the parsers (mostly spaCy) again, and
a script calling the library needs no `if __name__ == "__main__"` guard. Workers are forked
from the ingest process itself when it runs no other thread; a fork copies only the calling
thread, so a lock another thread held at that moment stays held forever in the child (seen as
parses hanging until max_file_seconds after a Spark session had started in the process). With
other threads running (a server, the Spark driver) workers come from a fork server: a clean
process started once, which loads the parsers and forks each worker. Elsewhere they are
spawned."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import queue
import resource
import signal
import sys
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

from kbqa.errors import ParseError
from kbqa.ingest.files import FileLimits, check_size, parse_file
from kbqa.ingest.partition import load_parsers, warm_pdf
from kbqa.types import Document

log = logging.getLogger(__name__)

# The ingest's ends of every worker's pipe. A forked worker closes its copies of them all: held
# open there, a sibling's pipe would not end when the ingest closes it or dies, and that
# sibling would wait for requests forever. Weak: a worker dropped unclosed still closes its end.
_INGEST_ENDS: weakref.WeakSet[Any] = weakref.WeakSet()
_INGEST_ENDS_LOCK = threading.Lock()


def _vm_bytes(pid: int | str = "self", field: str = "VmSize") -> int:
    """A field of /proc/PID/status in bytes (0 where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _serve(
    conn: Any, inherited: list[Any], limits: FileLimits, max_chars: int, soft_max_chars: int
) -> None:
    """The worker's loop: (path, digest) in, ("ok", Document | "error", reason, …) out."""
    # A worker forked from the ingest inherits the ingest's end of its own pipe and of its
    # siblings' (see _INGEST_ENDS); holding its own, it would never see the ingest die.
    for end in inherited:
        end.close()
    load_parsers()  # a no-op when forked from a process that loaded them
    # Parsers' own complaints about a broken file would reach the terminal; the reason is
    # reported with the file instead.
    logging.getLogger().addHandler(logging.NullHandler())
    warnings.simplefilter("ignore")
    ready = _vm_bytes()
    if ready:
        cap = ready + limits.max_parse_memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the ingest is gone
        if request is None:
            return
        path, digest = request
        # If the ingest dies mid-parse no one is left to stop this one: it stops itself.
        signal.alarm(int(limits.max_file_seconds) + 5)
        timings: dict[str, float] = {}
        try:
            doc = parse_file(Path(path), max_chars, soft_max_chars, digest, timings, limits)
            reply: tuple = ("ok", doc)
        except ParseError as exc:
            reply = ("error", str(exc))
        except MemoryError:
            reply = ("memory", "")
        except RecursionError:
            reply = ("error", "cannot parse: nested too deeply")
        except Exception as exc:  # a parser bug must not stop the other files
            reply = ("error", f"unexpected error: {type(exc).__name__}: {str(exc)[:200]}")
        signal.alarm(0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        try:
            conn.send((*reply, timings, peak))
        except (OSError, MemoryError):
            return
        if reply[0] == "memory":
            return  # a fresh worker for the next file, not a fragmented heap


def _context() -> Any:
    """How workers start (see the module's docstring): fork when this process runs no other
    thread, else a fork server on Linux (the parsers pure Python, lxml and pdfminer: a forked
    worker needs no thread pool of its parent's); spawn elsewhere (macOS forbids forking system
    libraries)."""
    if sys.platform != "linux":
        return multiprocessing.get_context("spawn")
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["kbqa.ingest.preload_parsers"])
    return ctx


class ParseWorker:
    """Parses files in a worker process within `limits`; use as a context manager. Each
    `parse` raises ParseError with the reason when the file is skipped."""

    def __init__(self, limits: FileLimits, max_chars: int = 1200, soft_max_chars: int = 800):
        self.limits, self.max_chars, self.soft_max_chars = limits, max_chars, soft_max_chars
        self.restarts = 0  # workers started after the first
        self.peak_rss = 0  # the largest worker's peak resident size seen, in bytes
        self._process: Any = None
        self._conn: Any = None
        self._started = 0

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _start(self) -> None:
        ctx = _context()
        fork = ctx.get_start_method() == "fork"
        if fork:
            load_parsers()
        parent, child = ctx.Pipe()
        with _INGEST_ENDS_LOCK:
            inherited = [parent, *_INGEST_ENDS] if fork else []  # a forked worker's copies
        process = ctx.Process(
            target=_serve,
            args=(child, inherited, self.limits, self.max_chars, self.soft_max_chars),
            name="kbqa-parse",
            daemon=True,
        )
        if fork:
            # A forked worker's garbage collector must never finalise what this process left
            # unreachable: an onnxruntime session of an earlier knowledge base, destroyed
            # there, waits forever for the thread pool that did not come with the fork (seen
            # as a parse hanging until max_file_seconds in a process's third ingest). Frozen,
            # the objects of this moment are never examined by the worker's collections.
            gc.freeze()
        try:
            process.start()
        finally:
            if fork:
                gc.unfreeze()
        child.close()
        with _INGEST_ENDS_LOCK:
            _INGEST_ENDS.add(parent)
        self._process, self._conn = process, parent
        self.restarts += 1 if self._started else 0
        self._started += 1

    def _stop(self) -> int | None:
        """Kill the worker; its exit code."""
        process, self._process = self._process, None
        if self._conn is not None:
            with _INGEST_ENDS_LOCK:
                _INGEST_ENDS.discard(self._conn)
            self._conn.close()
            self._conn = None
        if process is None:
            return None
        self.peak_rss = max(self.peak_rss, _vm_bytes(process.pid, "VmHWM"))
        if process.is_alive():
            process.kill()
        process.join(5)
        return process.exitcode

    def close(self) -> None:
        if self._process is None:
            return
        try:
            self._conn.send(None)
            self._process.join(2)
        except OSError:
            pass
        self._stop()

    def parse(self, path: Path, digest: str, timings: dict[str, float]) -> Document:
        """The file's Document, parsed in the worker; ParseError when it is skipped."""
        check_size(path, self.limits)  # before a byte is sent anywhere
        if self._process is None or not self._process.is_alive():
            self._stop()
            self._start()
        started = time.perf_counter()
        self._conn.send((str(path), digest))
        if not self._conn.poll(self.limits.max_file_seconds):
            self._stop()
            timings["parse"] = timings.get("parse", 0.0) + time.perf_counter() - started
            raise ParseError(
                f"took longer than max_file_seconds ({self.limits.max_file_seconds:g} s): skipped"
            )
        try:
            kind, value, times, peak = self._conn.recv()
        except (EOFError, OSError):
            code = self._stop()
            raise ParseError(self._crash(code)) from None
        self.peak_rss = max(self.peak_rss, peak)
        for stage, seconds in times.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        if kind == "ok":
            return value
        if kind == "memory":
            self._stop()
            raise ParseError(self._crash(None))
        raise ParseError(value)

    def _crash(self, code: int | None) -> str:
        memory = self.limits.max_parse_memory_bytes / (1024 * 1024)
        if code is None or code == -signal.SIGKILL or code == -signal.SIGABRT:
            # MemoryError, the kernel's OOM killer, or a C library aborting on a failed malloc
            return f"ran out of memory (max_parse_memory_bytes, {memory:g} MB): skipped"
        if code < 0:
            return f"the parser crashed ({signal.Signals(-code).name}): skipped"
        return f"the parser exited with status {code}: skipped"


class ParsePool:
    """`size` ParseWorkers, one per core by default: `parse` may be called from several threads
    at once, each call on a worker of its own (ingest/prefetch.py drives them). Use as a context
    manager.

    A worker belongs to one thread at a time: every use (`parse`, `start`, `close`) takes it
    from the idle queue and gives it back. Two threads once used one worker at once — a parse
    thread restarting it while the ingest thread's `start` started it too — and the thread,
    its request sent on one process's pipe, waited for the reply on the other's, forever."""

    def __init__(
        self, limits: FileLimits, max_chars: int = 1200, soft_max_chars: int = 800, size: int = 1
    ):
        self.size = max(1, size)
        self._workers = [ParseWorker(limits, max_chars, soft_max_chars) for _ in range(self.size)]
        self._idle: queue.SimpleQueue[ParseWorker] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)
        self._closed = False
        self._lock = threading.Lock()  # between giving a worker back and closing the pool

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self, n: int, pdf: bool = False) -> None:
        """Have up to n of the idle workers running, started from this thread: call it before
        any other thread runs, and they are forked, with no fork server to start (_context).
        `pdf`: files ahead are PDFs; warm that parser here once, so no worker pays for it."""
        if pdf and n and _context().get_start_method() == "fork":
            load_parsers()
            warm_pdf()
        idle = self._take_idle()
        try:
            running = sum(w._process is not None for w in idle)
            for worker in idle:
                if running >= n:
                    break
                if worker._process is None:
                    worker._start()
                    running += 1
        finally:
            for worker in idle:
                self._give_back(worker)

    def parse(self, path: Path, digest: str, timings: dict[str, float]) -> Document:
        worker = self._take()
        try:
            return worker.parse(path, digest, timings)
        finally:
            self._give_back(worker)

    def _take(self) -> ParseWorker:
        while True:
            try:
                return self._idle.get(timeout=1)
            except queue.Empty:
                if self._closed:
                    raise ParseError("the ingest stopped before it was parsed: skipped") from None

    def _take_idle(self) -> list[ParseWorker]:
        idle = []
        while True:
            try:
                idle.append(self._idle.get_nowait())
            except queue.Empty:
                return idle

    def _give_back(self, worker: ParseWorker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.put(worker)
                return
        worker.close()

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self._workers)

    @property
    def peak_rss(self) -> int:
        return max(w.peak_rss for w in self._workers)

    def close(self) -> None:
        """Stop the idle workers now; one still parsing for a thread (an ingest stopped by an
        error or Ctrl-C) is stopped by that thread as it gives it back."""
        with self._lock:
            self._closed = True
        for worker in self._take_idle():
            worker.close()
