"""A source file's blocks as Markdown, with their plain text, for a Markdown, HTML, DOCX or PDF
file (markdown_blocks, html_blocks, docx_blocks, pdf_blocks): the structure ingest's plain
chunks lost, read back from the file for procedures (assistant/steps.py) and for showing a
passage (render/original.py). [] for other files, and for a file gone, too large or unreadable: the
callers then use the chunk's plain text."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from kbqa.ingest import docx_blocks, html_blocks, markdown_blocks, pdf_blocks
from kbqa.types import Hit

log = logging.getLogger(__name__)

Reader = Callable[[Path], list[tuple[str, str]]]
READERS: dict[str, Reader] = {
    ".md": markdown_blocks.read,
    ".markdown": markdown_blocks.read,
    ".html": html_blocks.read,
    ".htm": html_blocks.read,
    ".xhtml": html_blocks.read,
    ".docx": docx_blocks.read,
    ".pdf": pdf_blocks.read,
}
_MAX_BYTES = 2_000_000


@lru_cache(maxsize=64)
def _read(path: str, mtime: float) -> tuple[tuple[str, str], ...]:
    file = Path(path)
    return tuple(READERS[file.suffix.lower()](file))


def source_blocks(hit: Hit) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each block of the hit's file, in order."""
    path = Path(hit.uri)
    if "://" in hit.uri or path.suffix.lower() not in READERS:
        return []
    try:
        stat = path.stat()
        if stat.st_size > _MAX_BYTES:
            return []
        return list(_read(str(path), stat.st_mtime))
    except Exception:  # gone, changed past reading, or a parser's error: the plain text is shown
        log.debug("could not read the blocks of %s", path, exc_info=True)
        return []


__all__ = ["READERS", "source_blocks"]
