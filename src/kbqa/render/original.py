"""A passage's own Markdown, for showing it formatted. Ingest keeps a chunk's text plain (the
list numbers and backticks gone, which is what is embedded and quoted); for a Markdown, HTML,
DOCX or PDF file the page shows the blocks of the source file that the chunk holds, as written
(an HTML page's, a Word document's or a PDF's as Markdown written from its text:
ingest/file_blocks.py):
steps numbered, commands as code. Presentation only: when the file is gone or changed, the
plain text is shown."""

from __future__ import annotations

import itertools

from kbqa.ingest.file_blocks import source_blocks
from kbqa.ingest.markdown_blocks import ITEM as _ITEM
from kbqa.ingest.markdown_blocks import plain
from kbqa.types import Hit


def _key(text: str) -> str:
    return " ".join(plain(text).split())[:48]


def passage(hit: Hit) -> str | None:
    """The chunk's own Markdown (the file's blocks whose text it holds), or None."""
    found = source_blocks(hit)
    if not found:
        return None
    held = " ".join(hit.text.split())
    kept = [md for md, text in found if text and _key(text) in held and not md.startswith("#")]
    return _joined(kept) if kept else None


def _joined(blocks: list[str]) -> str:
    # List items stay one list: "\n" between items, a blank line between other blocks.
    joined = blocks[0]
    for before, md in itertools.pairwise(blocks):
        same_list = _ITEM.match(before) and _ITEM.match(md)
        joined += ("\n" if same_list else "\n\n") + md
    return joined


def unit(hit: Hit, text: str) -> str | None:
    """The Markdown of the one block (a step, a command, a sentence's paragraph) that the unit
    `text` is from, when the unit is the whole block or a list item; a procedure's (a paragraph
    a step: assistant/steps.py) as its steps, when each is found; else None."""
    steps = [p for p in text.split("\n\n") if p.strip()]
    if len(steps) > 1:
        found = [unit(hit, step) for step in steps]
        return _joined(found) if all(found) else None
    wanted = " ".join(plain(text).split())
    for md, block_text in source_blocks(hit):
        if block_text == wanted or (_ITEM.match(md) and wanted and wanted in block_text):
            return md
    return None
