"""A procedure quoted whole. Asked how to do something, a reader wants the steps, in order; a
numbered list cut into one unit per step let the model quote one step of six (issue 36). So,
for a how-to question, a passage that holds a whole numbered list from its source file offers
that list as one unit: the passage's own text from the first step to the last, each step a
paragraph of it. Lists are read from Markdown, HTML, DOCX and PDF sources (ingest/file_blocks.py:
a Sphinx page's `<ol>`, a Word document's "List Number" paragraphs, a PDF's numbered lines);
other files keep one unit per step."""

from __future__ import annotations

import re

from kbqa.assistant.text import spaced
from kbqa.assistant.units import Unit
from kbqa.ingest.file_blocks import source_blocks
from kbqa.types import Hit

_HOW_TO = re.compile(
    r"\b(how (?:do|can|should|would|to|does one)|steps?|procedure|process|walk me through|"
    r"what do (?:i|we) (?:do|run))\b",
    re.I,
)
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+")
_MARK_BEFORE = re.compile(r"(?:^|\n)(\d{1,3}[.)][ \t]+)$")


def asks_how(question: str) -> bool:
    return bool(_HOW_TO.search(question))


def procedure(hit: Hit) -> str:
    """The hit's text from the first step of a numbered list of its source to the last (the
    first such list the hit holds whole, of two steps or more), or "" when there is none."""
    run: list[str] = []
    blocks = source_blocks(hit)
    for md, text in [*blocks, ("", "")]:
        if _NUMBERED.match(md) and text:
            run.append(text)
            continue
        if len(run) >= 2 and (found := _span_of(run, hit.text)):
            return found
        run = []
    return ""


def with_procedures(question: str, hits: list[Hit], found: list[Unit]) -> list[Unit]:
    """`found`, where the question asks how to do something, with each passage's procedure as
    one unit in place of the units of its steps."""
    if not asks_how(question):
        return found
    out = list(found)
    for n, hit in enumerate(hits, 1):
        steps = procedure(hit)
        if not steps:
            continue
        flat = " ".join(steps.split())
        inside = [i for i, u in enumerate(out) if u.n == n and " ".join(u.text.split()) in flat]
        # First among its passage's units: asked how, the steps are the answer the passage
        # offers, and the sentences around them (when, why) come after.
        at = next((i for i, u in enumerate(out) if u.n >= n), len(out))
        out = [u for i, u in enumerate(out) if i not in inside]
        out.insert(at, Unit(n, steps))
    return out


def _span_of(steps: list[str], text: str) -> str:
    """The stretch of `text` from the first step to the end of the last, whitespace aside."""

    first = re.search(spaced(steps[0]), text)
    last = re.search(spaced(steps[-1]), text[first.end() :]) if first else None
    if not first or not last:
        return ""
    # A first step written with its number (a DOCX's list, as ingest keeps it) starts there.
    start = first.start()
    if mark := _MARK_BEFORE.search(text[:start]):
        start = mark.start(1)
    stretch = text[start : first.end() + last.end()]
    # Every step in order inside it, and nothing much else (a list cut by a chunk break is
    # not quoted as the whole procedure).
    flat = " ".join(stretch.split())
    if not all(" ".join(s.split()) in flat for s in steps):
        return ""
    return stretch if len(flat) <= 1.1 * len(" ".join(steps)) + 20 else ""


__all__ = ["asks_how", "procedure", "with_procedures"]
