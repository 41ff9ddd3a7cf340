"""A unit as a reader takes it in: a table row as ingest writes it ("Service: route-planner;
Language: Rust; Port: 7200; …") read as what it means (the first cell names the thing, the
others say what it has), and a procedure as numbered steps."""

from __future__ import annotations

import re

from kbqa.assistant.text import paragraphs
from kbqa.types import Evidence

_NUMBER = re.compile(r"^\d{1,3}[.)]\s+")  # a step's own number, as some sources keep it
_ROW = re.compile(r"^[^:;\n]{1,40}: [^;\n]+(?:; [^:;\n]{1,40}: [^;\n]+)+\.?$")
_CITED = re.compile(r"^(.*) (\[\d+\](?:\[\d+\])*)([.!?])$")  # "… [1]." as quotes are written


def cells(text: str) -> list[tuple[str, str]] | None:
    """[(header, value), …] of a row, or None for anything else."""
    text = text.strip()
    if not _ROW.match(text):
        return None
    pairs = []
    for part in text.rstrip(".").split("; "):
        header, _, value = part.partition(": ")
        pairs.append((header.strip(), value.strip()))
    return pairs


def sentence(text: str) -> str:
    """A row as a sentence ("route-planner: port 7200, language Rust, …"); other text as is."""
    pairs = cells(text)
    if not pairs:
        return text
    (_, subject), rest = pairs[0], pairs[1:]
    said = ", ".join(f"{header[:1].lower() + header[1:]} {value}" for header, value in rest)
    return f"{subject}: {said}."


def quoted(text: str) -> str:
    """An extracted answer's text (quoted sentences, each "… [n].", assistant/free.py's Draft)
    with each quoted row as a sentence, its citation kept; other sentences as they are."""
    out = []
    for part in re.split(r"(?<=\][.!?]) ", text):
        found = _CITED.match(part)
        if found and cells(found[1]):
            part = f"{sentence(found[1]).rstrip('.')} {found[2]}{found[3]}"
        out.append(part)
    return " ".join(out)


def readable(text: str) -> str:
    """A unit as a reader takes it in: a procedure (assistant/steps.py: one paragraph a step)
    as numbered steps, a table row as a sentence, anything else as it is."""
    steps = [_NUMBER.sub("", step) for step in paragraphs(text)]
    if len(steps) > 1:
        return "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))
    return sentence(text)


def in_context(evidence: Evidence, unit: str, mark: str = "") -> str:
    """`unit` (the evidence's unit as rendered) between the sentences its quote shows with it,
    `mark` (its citation) after the prose — before a block the unit introduces (a command
    after "take a manual snapshot:", units.introduced), which follows on its own lines."""
    block = evidence.block
    prose = " ".join(
        part for part in (evidence.before, unit, "" if block else evidence.after) if part
    )
    return f"{prose}{mark}{block}"
