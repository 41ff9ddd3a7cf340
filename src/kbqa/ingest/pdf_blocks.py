"""The elements of a PDF source file as Markdown, with their plain text: a list item that opens
with its number ("1. Submit every claim…") as that numbered item, another list item as "- text"
(its bullet dropped), a title as a heading, page headers, footers and numbers left out, every
other element as its text, escaped. Ingest keeps a chunk's text plain, so a PDF's steps and
lists reach the index as plain lines; this reads them back from the file with the same parser
ingest uses (unstructured's "fast" strategy: the text layer, no OCR), as docx_blocks does for
Word: for the answer path's procedures and for showing a passage formatted.
"""

from __future__ import annotations

import re
from pathlib import Path

from kbqa.ingest.markdown_blocks import escape, unlisted

_NUMBERED = re.compile(r"^(\d{1,3})[.)]\s+(.+)$", re.S)
_BULLET = re.compile(r"^[-*•‣◦▪●–]\s*")
_LEFT_OUT = {"Header", "Footer", "PageNumber", "PageBreak"}


def blocks(path: Path) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each element of the PDF's text layer."""
    from kbqa.ingest.partition import parsers

    partition, _ = parsers()
    elements = partition(
        filename=str(path), content_type="application/pdf", strategy="fast", languages=["eng"]
    )
    out: list[tuple[str, str]] = []
    for element in elements:
        text = " ".join((element.text or "").split())
        kind = getattr(element, "category", type(element).__name__)
        if not text or kind in _LEFT_OUT:
            continue
        if kind == "Title":
            out.append((f"{'#' if not out else '##'} {escape(text)}", text))
        elif kind == "ListItem" and (numbered := _NUMBERED.match(text)):
            out.append((f"{numbered[1]}. {escape(numbered[2])}", text))
        elif kind == "ListItem":
            out.append((f"- {escape(_BULLET.sub('', text))}", text))
        else:
            out.append((unlisted(escape(text)), text))
    return out


def read(path: Path) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each element of a PDF file."""
    return blocks(path)


__all__ = ["blocks", "read"]
