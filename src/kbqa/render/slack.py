"""An answer as Slack Block Kit, within Slack's limits, and never pinging anyone."""

from __future__ import annotations

import re
from pathlib import Path

from kbqa.render import rows
from kbqa.render.model import Shown, Source, shown
from kbqa.types import Answer, Evidence

SECTION_LIMIT = 3000  # characters in a section's text
TEXT_LIMIT = 3900  # characters in a message's fallback text
MAX_SOURCES = 5


def neutralize(text: str) -> str:
    """Escape Slack's control characters so that retrieved or generated text can never mention
    a user or a group, or ping a channel (`<!channel>`, `<@U123>`, `<!subteam^…>`)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Plain "@here" is not a ping in API messages, but a zero-width space makes sure of it.
    return re.sub(r"@(channel|here|everyone)\b", "@\u200b\\1", text)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def source_line(source: Source) -> str:
    """'[n] <link|label> · #channel · age', or 'label — `file`' for a file."""
    label = neutralize(source.label).replace("|", "¦")
    if source.link:
        where = f"<{source.link}|{label}>"
    else:
        where = f"{label} — `{neutralize(Path(source.hit.uri).name)}`"
    place = f"#{source.channel}" if source.channel else ""
    parts = [
        p for p in (f"{source.marks} {where}" if source.n else where, place, source.age()) if p
    ]
    return " · ".join(parts)


def bold(text: str, span: str) -> str:
    """Neutralized `text` with `span` in bold (where Slack's `*` can enclose it)."""
    text, span = neutralize(text), neutralize(span)
    if not span or "*" in span or span not in text:
        return text
    before, _, after = text.partition(span)
    if before.count("`") % 2:  # inside `code` a * is shown as it is
        return text
    return f"{before}*{span}*{after}"


def quote(evidence: Evidence) -> str:
    """A unit as a Slack quote, its span in bold, its citation after it."""
    text = rows.readable(evidence.text)  # a row as what it means, steps numbered
    lines = rows.in_context(evidence, bold(text, evidence.span), f" [{evidence.n}]").splitlines()
    return "\n".join(f">{line}" for line in lines)


QUOTED = "_Quoted from the sources:_"


def answer_blocks(answer: Answer) -> tuple[str, list[dict]]:
    """(fallback text, blocks) for an answer or an abstention: the answer (a pointed one as a
    quote per unit, its copied words in bold), its sources, and why it abstained or quoted."""
    view = shown(answer, closest=MAX_SOURCES, cited=MAX_SOURCES)
    text = view.text + (" Closest sources:" if view.closest and view.sources else "")
    blocks = []
    if view.searched:
        blocks.append({"type": "context", "elements": [_mrkdwn(_searched(view.searched))]})
    if view.pointed or answer.mode == "extracted":
        # Quoted words are the sources', not an answer written for the asker: say so.
        blocks.append({"type": "context", "elements": [_mrkdwn(QUOTED)]})
    blocks += [_section(part) for part in _body(view, text)]
    if view.sources:
        elements = [_mrkdwn(truncate(source_line(s), 1000)) for s in view.sources]
        blocks.append({"type": "context", "elements": elements})
    notes = [f"Note: {view.note}"] if view.note else []
    for line in [view.why, *notes]:
        if line:
            blocks.append(
                {"type": "context", "elements": [_mrkdwn(truncate(neutralize(line), 1000))]}
            )
    return truncate(neutralize(text), TEXT_LIMIT), blocks


def _searched(searched: str) -> str:
    return truncate(f"searched for: _{neutralize(searched).replace('_', ' ')}_", 1000)


def _body(view: Shown, text: str) -> list[str]:
    if not view.pointed:
        return [bold(text, view.span)]
    return [quote(e) for e in view.evidence]


def _section(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(truncate(text, SECTION_LIMIT))}


def _mrkdwn(text: str) -> dict:
    # verbatim: Slack then turns no bare URL, #channel or @name in the text into a link.
    return {"type": "mrkdwn", "text": text, "verbatim": True}
