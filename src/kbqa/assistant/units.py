"""Evidence units: the shown passages cut into what a person would quote.

A unit is a sentence of prose, a table row (ingest writes a row as "Header: value; …", so it
carries its header), a list item, or a command line. What a reader would never quote as an
answer is left out: headings, pointers ("see Section 6.1"), questions, markup, fragments of a
word or two, and sentences addressed to the assistant (the prompt's fence removes those too).
The model points at units by number; kbqa quotes them, so what is shown is the passage's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kbqa.assistant.prompt import instruction_sentences
from kbqa.assistant.text import split_sentences, words
from kbqa.types import Hit


@dataclass(frozen=True)
class Unit:
    """One quotable piece of passage `n` (hits[n - 1]), as the passage writes it."""

    n: int
    text: str


# "See Section 6.1", "For details, see the manual", "Refer to the FAQ": a pointer, not an answer.
_POINTER = re.compile(
    r"^\W*(?:see|refer to|cf\.|for (?:more|further|details|information)|more (?:information|"
    r"details) (?:is|are|can be)|(?:this|the following) (?:section|chapter|page) (?:describes|"
    r"explains|covers|lists))\b",
    re.I,
)
_TAG = re.compile(r"<[^>\n]{1,200}>")
# A line that is itself a command: a shell prompt, or wholly inside backticks.
_COMMAND = re.compile(r"^\s*(?:\$ |# |`[^`]+`\s*$)")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_ROW = re.compile(r"^[^:;\n]{1,40}: [^;\n]+(?:; [^:;\n]{1,40}: [^;\n]+)+\.?$")
# Slack threads are written "Name: message"; the speaker is not part of what is quoted.
_GAP = "…"


def units(hits: list[Hit]) -> list[Unit]:
    """The quotable units of `hits`, in order; each knows the passage it came from."""
    out: list[Unit] = []
    for n, hit in enumerate(hits, 1):
        headings = {p.strip().casefold() for p in [hit.title, *hit.heading.split("›")] if p}
        for line in hit.text.split("\n"):
            for piece in _pieces(line):
                if _quotable(piece, headings):
                    out.append(Unit(n, piece))
    return out


def around(unit: str, passage: str, after_chars: int) -> tuple[str, str]:
    """(before, after): what a quote of a prose unit shows with it from its own paragraph of
    `passage` — the sentence before it, and the sentences after it up to `after_chars`
    characters. The sentence a question needs is often the unit's neighbour (the second hop
    of a two-step question, the name a "He …" sentence leaves out), and the prompt's focus may
    have cut it. A row, a command, a list item or a procedure is quoted alone ("", "")."""
    if after_chars <= 0 or "\n" in unit:
        return "", ""
    for line in passage.split("\n"):
        if unit not in line or _ROW.match(line.strip()) or _COMMAND.match(line):
            continue
        if _LIST_MARK.match(line):
            return "", ""
        sentences = [s.strip() for s in split_sentences(line) if s.strip()]
        if unit not in sentences:
            continue
        i = sentences.index(unit)
        before = sentences[i - 1] if i and _plain(sentences[i - 1]) else ""
        after, used = [], 0
        for sentence in sentences[i + 1 :]:
            used += len(sentence) + 1
            if used > after_chars or not _plain(sentence):
                break
            after.append(sentence)
        return before, " ".join(after)
    return "", ""


def introduced(unit: str, passage: str, most_chars: int = 600) -> str:
    """What a unit that ends with a colon introduces ("take a manual snapshot:"): the next
    block of `passage` after the unit's own, as a Markdown block — a command or code as a fenced
    code block, a list or prose as it is — or "" (no colon, nothing after it, or too long). A
    quote of the announcing sentence alone leaves out the answer it announces."""
    if not unit.rstrip().endswith(":"):
        return ""
    blocks = [b.strip("\n") for b in passage.split("\n\n")]
    for i, block in enumerate(blocks[:-1]):
        if unit not in " ".join(block.split()):
            continue
        after = blocks[i + 1]
        if not after.strip() or len(after) > most_chars:
            return ""
        lines = after.splitlines()
        if all(_LIST_MARK.match(line) or _ROW.match(line.strip()) for line in lines):
            return after
        if len(lines) == 1 and _prose(after):
            return after
        fence = "````" if "```" in after else "```"
        return f"{fence}\n{after}\n{fence}"
    return ""


def _prose(text: str) -> bool:
    """A sentence, not a command: it ends as one and reads as words."""
    text = text.strip()
    return text.endswith((".", "!", "?")) and len(text.split()) >= 4 and "\\" not in text


def _plain(sentence: str) -> bool:
    """A sentence fit to stand beside a quoted unit: prose, not markup or a question."""
    return _quotable(sentence, set())


def _pieces(line: str) -> list[str]:
    line = line.strip()
    if not line or line == _GAP:
        return []
    # A table row, a command or a short list item is quoted whole; prose is cut into sentences.
    if _ROW.match(line) or _COMMAND.match(line) or (_LIST_MARK.match(line) and len(line) < 200):
        return [line]
    return [s.strip() for s in split_sentences(line) if s.strip()]


def _quotable(piece: str, headings: set[str]) -> bool:
    bare = piece.strip().rstrip(":").strip()
    if bare.strip(_GAP + " ") == "" or bare.casefold() in headings:
        return False
    if _TAG.search(piece) and len("".join(_TAG.findall(piece))) > 0.2 * len(piece):
        return False
    if bare.endswith("?") or _POINTER.search(bare) or instruction_sentences(piece):
        return False
    found = words(bare)
    if _COMMAND.match(piece):
        return bool(found)
    # A heading left in the text: a few words with no verb-like end and no full stop.
    return len(found) >= 3 and (len(found) > 6 or bool(re.search(r"[.!:;`\d]", bare)))


__all__ = ["Unit", "around", "introduced", "units"]
