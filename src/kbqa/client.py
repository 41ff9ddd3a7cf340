"""Asking a running `kbqa serve` from the command line: plain urllib, so that `kbqa ask` with
KBQA_SERVER starts in a fraction of a second (no models, no index)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from kbqa.errors import KbqaError


def ask_server(
    server: str,
    token: str,
    question: str,
    k: int | None = None,
    extractive: bool = False,
    sources: tuple[str, ...] | list[str] = (),
    timeout: float = 300.0,
) -> dict[str, Any]:
    """The server's answer JSON (the same as `kbqa ask --json`)."""
    payload: dict[str, Any] = {"question": question, "extractive": extractive}
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
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise KbqaError(f"{server}: {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KbqaError(f"cannot reach the kbqa server at {server}: {reason}") from None
