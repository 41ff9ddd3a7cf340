"""An answer as the web page and its event stream take it: JSON-able dicts and SSE frames."""

from __future__ import annotations

import json
from typing import Any

from kbqa.render.model import Source, cached_line, why_no_answer
from kbqa.types import Answer, Evidence


def sources(answer: Answer) -> dict[str, list[dict[str, Any]]]:
    """The cited and the retrieved passages with label, where, link and age."""
    return {
        "citations": [Source(c.n, c.hit).to_dict() for c in answer.citations],
        "hits": [Source(None, h).to_dict() for h in answer.hits],
    }


def answer_data(answer: Answer) -> dict[str, Any]:
    """The answer's JSON (as `kbqa ask --json` prints it), with `why` when it abstained and
    `cached_line` when it was served from the answer cache."""
    data = answer.to_dict()
    if answer.cached_at:
        data["cached_line"] = cached_line(answer)
    return {**data, "why": why_no_answer(answer)} if answer.abstained else data


def evidence_data(evidence: Evidence) -> dict[str, Any]:
    """A unit as the `evidence` event carries it: a quote, copied from passage [n]."""
    return {
        "n": evidence.n,
        "text": evidence.text,
        "span": evidence.span,
        "probability": round(evidence.probability, 4),
        "quote": True,
    }


def sse(event: str, data: Any) -> str:
    """One server-sent event (data on one line: JSON never holds a raw newline)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
