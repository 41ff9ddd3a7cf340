"""Where kbqa's log goes: KBQA_HOME/logs/kbqa.log (rotating) and stderr. Only the entry points
(`kbqa …`, which also runs `kbqa serve` and `kbqa slack`) call `configure`; the library logs
to `logging.getLogger(__name__)` and never adds handlers. Every line passes `redact`."""

from __future__ import annotations

import logging
import logging.handlers
import uuid
from collections.abc import Iterable
from pathlib import Path

from kbqa.redact import redact

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OURS = "_kbqa_handler"


class RedactingFormatter(logging.Formatter):
    """Formats a record (traceback included), then masks secrets in the whole text."""

    def __init__(self, fmt: str, known: Iterable[str] = ()):
        super().__init__(fmt)
        self.known = tuple(k for k in known if k)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.known)


def error_id() -> str:
    """A short id that ties what a person is told ("error 3f9c2a1b") to the logged details."""
    return uuid.uuid4().hex[:8]


def log_file(home: Path) -> Path:
    return home / "logs" / "kbqa.log"


def configure(
    home: Path,
    stderr_level: int | str = logging.ERROR,
    file_level: int | str = logging.INFO,
    known_secrets: Iterable[str] = (),
    max_bytes: int = 5_000_000,
    backups: int = 3,
) -> Path | None:
    """Send kbqa's records to the log file at `file_level` and to stderr at `stderr_level`;
    returns the file (None when it cannot be written, say a read-only home). Calling it again
    replaces the handlers it added before."""
    stderr_level, file_level = _level(stderr_level), _level(file_level)
    unconfigure()
    root = logging.getLogger()
    known = tuple(known_secrets)
    formatter = RedactingFormatter(FORMAT, known)
    stderr = logging.StreamHandler()
    stderr.setLevel(stderr_level)
    stderr.setFormatter(formatter)
    handlers: list[logging.Handler] = [stderr]
    path: Path | None = log_file(home)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
    except OSError:
        path = None
    else:
        to_file.setLevel(file_level)
        to_file.setFormatter(formatter)
        handlers.append(to_file)
    for handler in handlers:
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(min(stderr_level, file_level))
    # Third parties at INFO would fill the file with requests and model loading chatter.
    # faiss's loader logs each CPU build it tries and falls back from: not a failure.
    noisy = ("urllib3", "httpx", "httpcore", "filelock", "bm25s", "sentence_transformers", "faiss")
    for name in noisy:
        logging.getLogger(name).setLevel(max(logging.WARNING, min(stderr_level, file_level)))
    return path


def unconfigure() -> None:
    """Remove the handlers `configure` added (a command run in process, as tests do, ends)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        from kbqa.errors import KbqaError

        raise KbqaError(f"--log-level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return value
