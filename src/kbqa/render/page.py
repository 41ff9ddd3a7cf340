"""An answer as the web page and its event stream take it: JSON-able dicts and SSE frames."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from kbqa.render.model import Source, why_no_answer
from kbqa.types import Answer, Evidence


def file_link(uri: str) -> str:
    """The page's link to a file document (served by serve/files.py to those who may see it)."""
    return "/files/" + quote(uri.lstrip("/"))


def source_data(source: Source) -> dict[str, Any]:
    data = source.to_dict()
    if data["link"] is None and data["kind"] == "file" and uri_is_path(source.hit.uri):
        data["link"] = file_link(source.hit.uri)
    return data


def uri_is_path(uri: str) -> bool:
    return "://" not in uri and uri.startswith("/")


def sources(answer: Answer) -> dict[str, list[dict[str, Any]]]:
    """The cited and the retrieved passages with label, where, link and age."""
    return {
        "citations": [source_data(Source(c.n, c.hit)) for c in answer.citations],
        "hits": [source_data(Source(None, h)) for h in answer.hits],
    }


def answer_data(answer: Answer) -> dict[str, Any]:
    """The answer's JSON (as `kbqa ask --json` prints it), with `why` when it abstained."""
    data = answer.to_dict()
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
