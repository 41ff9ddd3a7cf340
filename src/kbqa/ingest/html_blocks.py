"""The blocks of an HTML source file, for the answer path's procedures: each item of a numbered
list (`<ol>`) as "1. text", every other block (a paragraph, a heading, a bullet, code) as its
text, in page order. Ingest keeps a chunk's text plain, so a Sphinx page's numbered steps reach
the index as paragraphs without their numbers; this reads the numbers back from the file, as
markdown_blocks does for Markdown. Not for showing a page: an HTML paragraph is not Markdown."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from kbqa.ingest.partition import html_content
from kbqa.types import Hit

_SUFFIXES = {".html", ".htm", ".xhtml"}
_BLOCKS = {"p", "pre", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th"}
_MAX_BYTES = 2_000_000


def blocks(data: bytes) -> list[tuple[str, str]]:
    """(numbered or plain text, plain text) of each block of the page's content."""
    import lxml.html
    from lxml import etree

    content, _ = html_content(data)
    try:
        root = lxml.html.fromstring(content)
    except (etree.ParserError, ValueError):
        return []
    out: list[tuple[str, str]] = []
    for element in root.iter(*_BLOCKS):
        # A block inside a list item is the item's own text, read with it.
        if any(a.tag == "li" for a in element.iterancestors()):
            continue
        text = " ".join(element.text_content().split())
        if not text:
            continue
        parent = element.getparent()
        if element.tag == "li" and parent is not None and parent.tag == "ol":
            number = [c for c in parent if c.tag == "li"].index(element) + 1
            out.append((f"{number}. {text}", text))
        else:
            out.append((text, text))
    return out


@lru_cache(maxsize=64)
def _file_blocks(path: str, mtime: float) -> tuple[tuple[str, str], ...]:
    return tuple(blocks(Path(path).read_bytes()))


def source_blocks(hit: Hit) -> list[tuple[str, str]]:
    """The blocks of the hit's HTML file; [] for other files, or one gone or too large."""
    path = Path(hit.uri)
    if "://" in hit.uri or path.suffix.lower() not in _SUFFIXES:
        return []
    try:
        stat = path.stat()
        if stat.st_size > _MAX_BYTES:
            return []
        return list(_file_blocks(str(path), stat.st_mtime))
    except (OSError, ValueError):
        return []


__all__ = ["blocks", "source_blocks"]
