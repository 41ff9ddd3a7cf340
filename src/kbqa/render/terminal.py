"""An answer as terminal text: the answer or its quoted evidence (copied words in bold), then
the sources."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from kbqa.render import rows
from kbqa.render.model import Shown, Source, shown
from kbqa.types import Answer, Evidence

Style = Callable[[str], str]
_CODE = re.compile(r"`([^`\n]+)`")


def plain(text: str) -> str:
    return text


def marked(text: str, span: str, bold: Style = plain) -> str:
    """`text` with the first `span` in it styled by `bold`."""
    if not span or span not in text:
        return text
    before, _, after = text.partition(span)
    return before + bold(span) + after


def quote(evidence: Evidence, bold: Style = plain) -> str:
    """'> unit [n]', each line of a unit quoted, its span in bold; a table row as what it
    means ("route-planner: port 7200, …")."""
    text = marked(rows.readable(evidence.text), evidence.span, bold)
    lines, code = [], False
    for line in rows.in_context(evidence, text, f" [{evidence.n}]").splitlines():
        if line.startswith("```"):  # a command the unit introduces: indented, without fences
            code = not code
            continue
        lines.append(f">     {line}" if code else f"> {unticked(line)}")
    return "\n".join(lines)


def evidence_lines(evidence: Evidence, first: bool, bold: Style = plain) -> str:
    """A streamed unit, quoted, its copied words in bold inside it."""
    return quote(evidence, bold)


def answer(
    answer: Answer, text_shown: bool = False, evidence_shown: bool = False, bold: Style = plain
) -> str:
    """What `kbqa ask` prints: the answer (left out where its sentences or its evidence were
    streamed already), why it abstained or quoted, then the sources."""
    view = shown(answer)
    why = [unticked(view.why)] if view.why else []
    why += [f"(searched for: {view.searched})"] if view.searched else []
    why += [f"(note: {view.note})"] if view.note else []
    if view.closest:
        if not view.sources:
            return "\n".join([answer.text, *why])
        lines = [f"  - {line(s)}" for s in view.sources]
        return "\n".join([f"{answer.text} Closest sources:", *lines, *why])
    sources = [line(s) for s in view.sources]
    if view.pointed:
        head = [] if evidence_shown else [_pointed(view, bold)]
        return "\n".join([*head, *why, "", *sources])
    text = view.text
    if answer.mode == "extracted":
        # Quoted sentences, shown as a pointed answer's quotes are: a table row as what it
        # means, a Slack message's code without its backticks; said to be quotes, as the page
        # and Slack say (a fallback quote says why it quoted).
        text = unticked(rows.quoted(text))
        if not view.why:
            why.insert(0, "(quoted from the sources)")
    head = "" if text_shown else marked(text, view.span, bold)
    return "\n".join([head, *why, "", *sources])


def unticked(text: str) -> str:
    """`code` in a title, label, quote or why line without its backticks, as a terminal shows
    a Markdown file's code (ingest reads it without them): a Slack message keeps them."""
    return _CODE.sub(r"\1", text)


def line(source: Source) -> str:
    """'[n] Label — where · age', a file as a file:// link (terminals open it on a click)."""
    uri = source.hit.uri
    if "://" in uri or not Path(uri).is_absolute():
        return source.line(label=unticked(source.label))
    text = f"{unticked(source.label)} — {Path(uri).as_uri()}"
    text += f" · {source.age()}" if source.age() else ""
    return f"{source.marks} {text}" if source.n else text


def _pointed(view: Shown, bold: Style) -> str:
    return "\n".join(quote(e, bold) for e in view.evidence)
