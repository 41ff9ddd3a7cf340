"""A source file's blocks as Markdown, with their plain text, for a Markdown, HTML or DOCX file
(markdown_blocks, html_blocks, docx_blocks): the structure ingest's plain chunks lost, read
back from the file for procedures (assistant/steps.py) and for showing a passage
(render/original.py). [] for other files, and for a file gone or changed past reading."""

from __future__ import annotations

from kbqa.ingest import docx_blocks, html_blocks, markdown_blocks
from kbqa.types import Hit


def source_blocks(hit: Hit) -> list[tuple[str, str]]:
    return (
        markdown_blocks.source_blocks(hit)
        or html_blocks.source_blocks(hit)
        or docx_blocks.source_blocks(hit)
    )


__all__ = ["source_blocks"]
