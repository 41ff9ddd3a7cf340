"""What the web, Drive and Notion tests share: fast retries that record their waits, a kill
between items, and a second knowledge base over the same home (a restart after the kill)."""

from __future__ import annotations

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator

from .conftest import FAST_RETRY, CountingEmbedder, CountingParser


class Killed(BaseException):
    """A kill mid-sync: not an Exception, so nothing on the way up catches it."""


def record_waits(http) -> list[float]:
    """Make `http` retry at once, recording each wait it would have slept (a Retry-After is
    recorded as asked)."""
    waits: list[float] = []
    http.retry = type(FAST_RETRY)(attempts=6, backoff=0.001, max_backoff=0.002, max_wait=300)
    http.sleep = waits.append
    return waits


def kill_at(connector, n: int) -> None:
    """The n-th fetch of `connector` dies with Killed."""
    fetch, count = connector.fetch, [0]

    def dying(item):
        count[0] += 1
        if count[0] == n:
            raise Killed(f"killed at item {n}")
        return fetch(item)

    connector.fetch = dying


def restarted(kb: KnowledgeBase) -> KnowledgeBase:
    """A new knowledge base over `kb`'s home, as after the process was killed."""
    again = KnowledgeBase(kb.settings, embedder=CountingEmbedder(), generator=EchoGenerator())
    again.parser = CountingParser()
    return again


def stored(kb: KnowledgeBase) -> tuple[list[str], int]:
    """Every document row's uri (sorted, duplicates kept) and the number of chunk rows."""
    from sqlalchemy import func, select

    from kbqa.store import ChunkRow, DocumentRow

    with kb.store.session() as s:
        rows = sorted(s.scalars(select(DocumentRow.uri)))
        return rows, s.scalar(select(func.count()).select_from(ChunkRow))


def reference(kb: KnowledgeBase, home, connector, config) -> tuple[list[str], int]:
    """What a clean, uninterrupted sync stores (in a knowledge base of its own at `home`)."""
    import dataclasses

    from .conftest import sync

    clean = KnowledgeBase(
        dataclasses.replace(kb.settings, home=home),
        embedder=CountingEmbedder(),
        generator=EchoGenerator(),
    )
    clean.parser = CountingParser()
    sync(clean, connector, config)
    return stored(clean)


def faults_bench():
    """benchmarks/faults.py (not a package): `check(kb, reference)` finds a knowledge base's
    database and indexes out of step, duplicates, and differences from a clean sync."""
    import sys
    from pathlib import Path

    here = str(Path(__file__).resolve().parents[2] / "benchmarks")
    if here not in sys.path:
        sys.path.insert(0, here)
    import faults

    return faults
