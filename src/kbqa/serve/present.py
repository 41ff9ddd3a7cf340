"""How answers' sources are shown outside the command line: label, age and a link."""

from __future__ import annotations

import json
from typing import Any

from kbqa.integrations.slack.blocks import age
from kbqa.settings import Settings
from kbqa.types import Answer, Hit


def display_uri(uri: str) -> str:
    from kbqa.cli import display_uri as relative  # one definition of how paths are shown

    return relative(uri)


def source(hit: Hit, n: int | None = None) -> dict[str, Any]:
    """A hit as the page shows it: label, where it lives (a link for Slack), and its age."""
    meta = hit.metadata
    link = hit.uri if hit.uri.startswith(("https://", "http://")) else None
    out: dict[str, Any] = {
        "chunk_id": hit.chunk_id,
        "label": hit.label,
        "uri": hit.uri,
        "where": display_uri(hit.uri),
        "link": link,
        "kind": "slack" if meta.get("kind") == "slack" else "file",
        "channel": meta.get("channel"),
        "age": age(hit),
        "updated": float(meta.get("last_ts") or meta.get("mtime") or 0) or None,
        "heading": hit.heading,
        "text": hit.text,
    }
    return {"n": n, **out} if n is not None else out


def sources(answer: Answer) -> dict[str, list[dict[str, Any]]]:
    return {
        "citations": [source(c.hit, c.n) for c in answer.citations],
        "hits": [source(h) for h in answer.hits],
    }


def why_no_answer(answer: dict[str, Any], settings: Settings) -> str:
    """One sentence on why an answer abstained, from its JSON and the thresholds."""
    if answer.get("abstain_reason"):
        return str(answer["abstain_reason"])
    hits = answer.get("hits") or []
    if not hits:
        return "Nothing in the knowledge base (that you may see) matched the question."
    best = hits[0]["score"]
    if best < settings.min_hit_score:
        return (
            f"The closest passage is not similar enough to the question "
            f"(similarity {best:.2f}, below {settings.min_hit_score:.2f})."
        )
    if answer.get("confidence", 0.0) < settings.min_confidence:
        return (
            f"The closest passage lacks the question's key terms "
            f"(confidence {answer['confidence']:.2f}, below {settings.min_confidence:.2f})."
        )
    return "No sentence of a possible answer could be backed by a passage it cites."


def sse(event: str, data: Any) -> str:
    """One server-sent event (data on one line: JSON never holds a raw newline)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
