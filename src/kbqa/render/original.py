"""A passage's own Markdown, for showing it formatted. Ingest keeps a chunk's text plain (the
list numbers and backticks gone, which is what is embedded and quoted); for a Markdown or text
file the page shows the blocks of the source file that the chunk holds, as written: steps
numbered, commands as code. Presentation only: when the file is gone or changed, the plain
text is shown."""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from pathlib import Path

from kbqa.types import Hit

_SUFFIXES = {".md", ".markdown"}
_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MAX_BYTES = 2_000_000


def plain(markdown: str) -> str:
    """Markdown as ingest reads it: no list marks, emphasis, backticks or link targets."""
    text = _LINK.sub(r"\1", markdown)
    text = re.sub(r"^\s*#{1,6}\s+", "", text, flags=re.M)
    text = _ITEM.sub("", text)
    text = text.replace("`", "").replace("**", "").replace("__", "")
    return " ".join(text.split())


def blocks(markdown: str) -> list[str]:
    """Headings, list items (with their continuation lines), fenced code, tables, paragraphs."""
    out: list[str] = []
    current: list[str] = []
    fenced = False

    def close() -> None:
        if current:
            out.append("\n".join(current))
            current.clear()

    for line in markdown.splitlines():
        if fenced:
            current.append(line)
            if _FENCE.match(line):
                fenced = False
                close()
            continue
        if _FENCE.match(line):
            close()
            current.append(line)
            fenced = True
        elif not line.strip():
            close()
        elif line.lstrip().startswith("#") or _ITEM.match(line):
            close()
            current.append(line)
            if line.lstrip().startswith("#"):
                close()
        elif line.lstrip().startswith("|") and current and not current[-1].lstrip().startswith("|"):
            close()
            current.append(line)
        else:
            current.append(line)
    close()
    return out


@lru_cache(maxsize=64)
def _file_blocks(path: str, mtime: float) -> tuple[tuple[str, str], ...]:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return tuple((b, plain(b)) for b in blocks(text))


def source_blocks(hit: Hit) -> list[tuple[str, str]]:
    """(markdown, plain) of each block of the hit's file; [] for other files."""
    path = Path(hit.uri)
    if "://" in hit.uri or path.suffix.lower() not in _SUFFIXES:
        return []
    try:
        stat = path.stat()
        if stat.st_size > _MAX_BYTES:
            return []
        return list(_file_blocks(str(path), stat.st_mtime))
    except OSError:
        return []


def _key(text: str) -> str:
    return " ".join(plain(text).split())[:48]


def passage(hit: Hit) -> str | None:
    """The chunk's own Markdown (the file's blocks whose text it holds), or None."""
    found = source_blocks(hit)
    if not found:
        return None
    held = " ".join(hit.text.split())
    kept = [md for md, text in found if text and _key(text) in held and not md.startswith("#")]
    if not kept:
        return None
    # List items stay one list: "\n" between items, a blank line between other blocks.
    joined = kept[0]
    for before, md in itertools.pairwise(kept):
        same_list = _ITEM.match(before) and _ITEM.match(md)
        joined += ("\n" if same_list else "\n\n") + md
    return joined


def unit(hit: Hit, text: str) -> str | None:
    """The Markdown of the one block (a step, a command, a sentence's paragraph) that the unit
    `text` is from, when the unit is the whole block or a list item; else None."""
    wanted = " ".join(plain(text).split())
    for md, block_text in source_blocks(hit):
        if block_text == wanted or (_ITEM.match(md) and wanted and wanted in block_text):
            return md
    return None
