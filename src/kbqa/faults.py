"""Fault points for crash tests: the write path calls `point(name)` where a crash matters.

With the setting `fault_at = "stage:n"` (KBQA_FAULT_AT) the process kills itself with SIGKILL
the n-th time it reaches fault point `stage`, so a test can crash an ingest at an exact place
(tests/test_faults.py, benchmarks/faults.py); "trace" only counts the points reached
(`reached()`), to find where a run can be killed. Unset, `point` costs one comparison."""

from __future__ import annotations

import os
import signal
from collections import Counter

from kbqa.errors import ConfigError

POINTS = (
    "parse",  # before a file is parsed
    "embed",  # before a batch is embedded
    "commit",  # before a batch's transaction commits
    "committed",  # after it committed, before the vector index follows
    "remove",  # after deleted files' rows are gone, before the index follows
    "index-save",  # the vector index's temporary file is written, not yet renamed
    "bm25-save",  # the BM25 index's temporary folder is written, not yet renamed
    "bm25-pointer",  # the BM25 folder is renamed, current.json not yet pointing at it
    "run-end",  # everything saved, the run not yet marked finished
)
# Points a connector's sync passes besides its ingest's (ingest/connect.py).
SYNC_POINTS = ("sync-cursor",)  # a connector's items stored, its cursor not yet
ALL_POINTS = POINTS + SYNC_POINTS

_armed: tuple[str, int] | None = None
_trace = False
_reached: Counter[str] = Counter()


def check_spec(spec: str) -> None:
    """Raise ConfigError unless `spec` is "", "trace" or "stage:n" with a known stage."""
    _parse(spec)


def _parse(spec: str) -> tuple[str, int] | None:
    if spec in ("", "trace"):
        return None
    stage, _, count = spec.partition(":")
    if stage not in ALL_POINTS or not count.isdigit() or int(count) < 1:
        raise ConfigError(
            f"setting 'fault_at' must be 'trace' or STAGE:N (N >= 1) with STAGE one of "
            f"{', '.join(ALL_POINTS)}; got {spec!r}"
        )
    return stage, int(count)


def arm(spec: str) -> None:
    """Arm (or, with "", disarm) the fault points of this process; counts start again."""
    global _armed, _trace
    _armed, _trace = _parse(spec), spec == "trace"
    _reached.clear()


def point(stage: str) -> None:
    """A place where a crash is tested: dies here if armed for this stage and count."""
    if _armed is None and not _trace:
        return
    _reached[stage] += 1
    if _armed == (stage, _reached[stage]):
        os.kill(os.getpid(), signal.SIGKILL)


def reached() -> dict[str, int]:
    """How many times each fault point was reached since the last `arm`."""
    return dict(_reached)
