"""`kbqa serve`'s connector schedule: each `[[sources]]` entry with `schedule_minutes` synced on
its own interval in a background thread, and "sync now" from the admin page; a lock per source
means two syncs of one source never run at once in this process (a second asks is refused)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)


class SyncScheduler:
    """Runs `core.sync_sources([name])` for due sources. `now` is injectable for tests."""

    def __init__(self, core, tick_seconds: float = 30.0, now: Callable[[], datetime] | None = None):
        self.core, self.tick = core, tick_seconds
        self.now = now or (lambda: datetime.now(UTC))
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def running(self, name: str) -> bool:
        return self._lock(name).locked()

    def sync_now(self, name: str, wait: bool = False) -> bool:
        """Start a sync of source `name` in the background (or here, with `wait`); False
        when one of it is already running."""
        lock = self._lock(name)
        if not lock.acquire(blocking=False):
            return False

        def work() -> None:
            try:
                self.core.sync_sources([name])
            except Exception:  # the outcome is recorded by the sync; this is a bug's trace
                log.warning("scheduled sync of %s failed", name, exc_info=True)
            finally:
                lock.release()

        if wait:
            work()
            return True
        thread = threading.Thread(target=work, name=f"kbqa-sync-{name}", daemon=True)
        self._threads[name] = thread
        thread.start()
        return True

    def next_due(self, config, last: datetime | None) -> datetime | None:
        """When a source is next due: never for a manual one, now for one never synced."""
        if config.schedule_minutes <= 0:
            return None
        if last is None:
            return self.now()
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
        return last + timedelta(minutes=config.schedule_minutes)

    def states(self) -> list[dict[str, Any]]:
        """Each configured source: its last sync, the next, whether one runs now."""
        from kbqa.ingest.connect import source_states

        out = []
        configs = {c.name: c for c in self.core.settings.sources}
        for state in source_states(self.core.store, self.core.settings):
            last = state["last_started_at"]
            state["next_at"] = self.next_due(configs[state["name"]], last)
            state["running"] = self.running(state["name"])
            out.append(state)
        return out

    def run_due(self, wait: bool = False) -> list[str]:
        """Start every due source that is not already syncing; the names started."""
        started = []
        now = self.now()
        for state in self.states():
            due = state["next_at"]
            if due is not None and due <= now and self.sync_now(state["name"], wait):
                started.append(state["name"])
        return started

    def start(self) -> SyncScheduler:
        """Check for due sources every tick in a daemon thread (none if nothing is scheduled)."""
        if not any(c.schedule_minutes > 0 for c in self.core.settings.sources):
            return self

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_due()
                except Exception:
                    log.warning("the sync schedule failed a round", exc_info=True)
                self._stop.wait(self.tick)

        self._loop = threading.Thread(target=loop, name="kbqa-sync-schedule", daemon=True)
        self._loop.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in [self._loop, *self._threads.values()]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
