"""Block Kit rendering of answers, within Slack's limits, and never pinging anyone."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from kbqa.types import Answer, Hit

SECTION_LIMIT = 3000  # characters in a section's text
BUTTON_VALUE_LIMIT = 2000
MAX_SOURCES = 5
FEEDBACK_UP, FEEDBACK_DOWN = "kbqa_feedback_up", "kbqa_feedback_down"


def neutralize(text: str) -> str:
    """Escape Slack's control characters so that retrieved or generated text can never mention
    a user or a group, or ping a channel (`<!channel>`, `<@U123>`, `<!subteam^…>`)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Plain "@here" is not a ping in API messages, but a zero-width space makes sure of it.
    return re.sub(r"@(channel|here|everyone)\b", "@\u200b\\1", text)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def age(hit: Hit, now: float | None = None) -> str:
    stamp = float(hit.metadata.get("last_ts") or hit.metadata.get("mtime") or 0)
    if not stamp:
        return ""
    days = int(((now or time.time()) - stamp) // 86400)
    if days <= 0:
        return "today"
    if days < 60:
        return f"{days} day{'s' if days > 1 else ''} ago"
    return f"{days // 30} months ago" if days < 730 else f"{days // 365} years ago"


def source_line(hit: Hit, n: int | None = None) -> str:
    label = neutralize(hit.label).replace("|", "¦")
    if hit.uri.startswith(("https://", "http://")):
        where = f"<{hit.uri}|{label}>"
    else:
        where = f"{label} — `{neutralize(Path(hit.uri).name)}`"
    place = f"#{hit.metadata['channel']}" if hit.metadata.get("kind") == "slack" else ""
    parts = [p for p in (f"[{n}] {where}" if n else where, place, age(hit)) if p]
    return " · ".join(parts)


def answer_blocks(answer: Answer) -> tuple[str, list[dict]]:
    """(fallback text, blocks) for an answer or an abstention."""
    if answer.abstained:
        lines = [source_line(h) for h in _unique_documents(answer.hits)[:MAX_SOURCES]]
        text = answer.text + (" Closest sources:" if lines else "")
    else:
        lines = [source_line(c.hit, c.n) for c in answer.citations[:MAX_SOURCES]]
        text = answer.text
    body = truncate(_mark_span(answer, neutralize(text)), SECTION_LIMIT)
    # verbatim: Slack then turns no bare URL, #channel or @name in the text into a link.
    blocks: list[dict] = [{"type": "section", "text": _mrkdwn(body)}]
    if lines:
        elements = [_mrkdwn(truncate(line, 1000)) for line in lines]
        blocks.append({"type": "context", "elements": elements})
    if why := answer.explanation():
        blocks.append(
            {
                "type": "context",
                "elements": [_mrkdwn(truncate(neutralize(why), 1000))],
            }
        )
    blocks.append(_feedback_buttons(answer))
    return truncate(neutralize(text), 3900), blocks


def _mark_span(answer: Answer, body: str) -> str:
    """A quoted answer with the words that answer in bold, so the reader finds them."""
    span = neutralize(answer.span)
    if answer.mode != "extracted" or not span or "*" in span or span not in body:
        return body
    before, _, after = body.partition(span)
    return f"{before}*{span}*{after}"


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _feedback_buttons(answer: Answer) -> dict:
    # The click carries what is needed to store the feedback, within Slack's size limit.
    uris = [c.hit.uri for c in answer.citations][:MAX_SOURCES]
    keep = 900
    while True:
        payload = {"q": answer.question[:400], "a": answer.text[:keep], "c": uris}
        value = json.dumps(payload, ensure_ascii=False)
        if len(value) <= BUTTON_VALUE_LIMIT:
            break
        keep, uris = keep // 2, uris[:-1] if keep < 100 else uris
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": FEEDBACK_UP,
                "value": value,
                "text": {"type": "plain_text", "text": "👍 Helpful"},
            },
            {
                "type": "button",
                "action_id": FEEDBACK_DOWN,
                "value": value,
                "text": {"type": "plain_text", "text": "👎 Not helpful"},
            },
        ],
    }


def _unique_documents(hits: tuple[Hit, ...]) -> list[Hit]:
    seen: dict[str, Hit] = {}
    for hit in hits:
        seen.setdefault(hit.uri, hit)
    return list(seen.values())
