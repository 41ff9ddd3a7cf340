"""Asking a running `kbqa serve` from the command line: plain urllib, so that `kbqa ask` with
KBQA_SERVER starts in a fraction of a second (no models, no index).

Without KBQA_SERVER, `kbqa ask` finds a server on the same home through the file `kbqa serve`
writes there (SERVER_FILE: its address, pid and a secret that makes the command line a local
caller, as it is in-process; readable by the home's owner only), once its pid is alive and it
answers a health call within half a second. A stale file (its process gone) is removed."""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kbqa.errors import KbqaError
from kbqa.types import Answer, Citation, Evidence, Hit

SERVER_FILE = "server.json"


class ServerUnreachable(KbqaError):
    """The server could not be reached (the command line then answers in-process)."""


def announce(home: Path, host: str, port: int) -> tuple[Path, str]:
    """Write the server file for a server on host:port in this process: (its path, the
    secret a local command line sends)."""
    secret = secrets.token_urlsafe(32)
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    data = {"url": f"http://{shown}:{port}", "pid": os.getpid(), "secret": secret}
    path = home / SERVER_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**data, "started_at": time.time()}, f)
    os.replace(tmp, path)
    return path, secret


def withdraw(path: Path, secret: str) -> None:
    """Remove the server file, unless another server has written its own since."""
    try:
        if hmac.compare_digest(json.loads(path.read_text()).get("secret", ""), secret):
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def is_local_secret(given: str, secret: str) -> bool:
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


def running_server(home: Path, timeout: float = 0.5) -> tuple[str, str] | None:
    """(url, secret) of the live server announced under `home`, or None."""
    path = home / SERVER_FILE
    try:
        data = json.loads(path.read_text())
        url, pid, secret = str(data["url"]), int(data["pid"]), str(data["secret"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid):
        path.unlink(missing_ok=True)  # its server is gone; the next `kbqa serve` writes anew
        return None
    request = urllib.request.Request(
        url + "/api/health", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if json.loads(response.read()).get("local") is True:
                return url, secret
    except (OSError, ValueError, AttributeError):
        pass  # starting, stopping, or another program on that port
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    except OSError:
        return False
    return True


def ask_server(
    server: str,
    token: str,
    question: str,
    k: int | None = None,
    extractive: bool = False,
    sources: tuple[str, ...] | list[str] = (),
    history: list[tuple[str, str]] = (),
    timeout: float = 300.0,
) -> dict[str, Any]:
    """The server's answer JSON (the same as `kbqa ask --json`); `history`: earlier turns."""
    payload: dict[str, Any] = {"question": question, "extractive": extractive}
    if history:
        payload["history"] = [list(turn) for turn in history]
    if k:
        payload["k"] = k
    if sources:
        payload["sources"] = list(sources)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = server.rstrip("/") + "/api/ask"
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _as_cli(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise KbqaError(f"{server}: {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerUnreachable(f"cannot reach the kbqa server at {server}: {reason}") from None


# What the page's JSON (render/page.py) adds to `kbqa ask --json`'s.
_PAGE_ONLY = ("html", "why", "cached_line")


def _as_cli(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k not in _PAGE_ONLY}
    out["evidence"] = [{k: v for k, v in e.items() if k != "html"} for e in out.get("evidence", [])]
    return out


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """The Answer of a server's JSON, for the command line to show as it shows its own."""
    try:
        citations = tuple(Citation(c["n"], _hit(c)) for c in data["citations"])
        return Answer(
            question=data["question"],
            text=data["answer"],
            abstained=data["abstained"],
            citations=citations,
            hits=tuple(_hit(h) for h in data["hits"]),
            confidence=data.get("confidence", 0.0),
            mode=data.get("mode", "abstained"),
            dropped=tuple((d["sentence"], d["reason"]) for d in data.get("dropped", [])),
            reason=data.get("reason", ""),
            span=data.get("span", ""),
            updated=data.get("updated", ""),
            evidence=tuple(
                Evidence(e["n"], e["text"], e.get("span", ""), 1.0, 1.0, *_around(e))
                for e in data.get("evidence", [])
            ),
            searched=data.get("searched", ""),
            note=data.get("note", ""),
            cached_at=_stamp(data.get("cached_at")),
            cached_question=data.get("cached_question", ""),
        )
    except (KeyError, TypeError) as exc:
        raise KbqaError(f"the server's answer lacks a field: {exc}") from None


def _stamp(iso: str | None) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() if iso else 0.0


def _around(evidence: dict[str, Any]) -> tuple[str, str]:
    """The sentences a quoted unit is shown with (a server before them sends none)."""
    return evidence.get("before", ""), evidence.get("after", "")


def _hit(d: dict[str, Any]) -> Hit:
    # The server's time, author and link, so that a remote answer shows its sources as its own.
    meta = {k: d[k] for k in ("updated_at", "author") if d.get(k)}
    meta |= {"url": d["link"]} if d.get("link") else {}
    return Hit(d["chunk_id"], d["score"], d["text"], d["heading"], d["uri"], d["title"], meta)
