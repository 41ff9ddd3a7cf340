"""Asking a running `kbqa serve` from the command line: plain urllib, so that `kbqa ask` with
KBQA_SERVER starts in a fraction of a second (no models, no index)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from kbqa.errors import KbqaError
from kbqa.types import Answer, Citation, Evidence, Hit


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
                Evidence(e["n"], e["text"], e.get("span", "")) for e in data.get("evidence", [])
            ),
            searched=data.get("searched", ""),
            note=data.get("note", ""),
        )
    except (KeyError, TypeError) as exc:
        raise KbqaError(f"the server's answer lacks a field: {exc}") from None


def _hit(d: dict[str, Any]) -> Hit:
    # The server's time, author and link, so that a remote answer shows its sources as its own.
    meta = {k: d[k] for k in ("updated_at", "author") if d.get(k)}
    meta |= {"url": d["link"]} if d.get("link") else {}
    return Hit(d["chunk_id"], d["score"], d["text"], d["heading"], d["uri"], d["title"], meta)
