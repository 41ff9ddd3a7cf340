"""The paragraphs of a DOCX source file as Markdown, with their plain text: a "List Number"
paragraph as "1. text" (counted until another kind of paragraph breaks the list), a "List
Bullet" or other list paragraph as "- text", a "Heading N" as N #s, every other paragraph as
its text, with runs in a code font in backticks and the rest escaped. Ingest keeps a chunk's
text plain, so a Word document's numbered steps reach the index as plain paragraphs; this reads
them back from the file, as markdown_blocks does for Markdown: for the answer path's
procedures and for showing a passage formatted. Tables are left out (ingest writes their rows).
"""

from __future__ import annotations

from pathlib import Path

from kbqa.ingest.files import FileLimits, check_contents
from kbqa.ingest.markdown_blocks import escape, unlisted

_CODE_FONTS = {"courier", "courier new", "consolas", "menlo", "monaco", "source code pro"}


def _is_code(run) -> bool:
    name = (run.font.name or "").casefold()
    return name in _CODE_FONTS or "code" in (run.style.name or "").casefold()


def _inline(paragraph) -> str:
    parts = []
    for run in paragraph.runs:
        if _is_code(run) and run.text.strip():
            parts.append(f"`{run.text.strip()}`" if "`" not in run.text else escape(run.text))
        else:
            parts.append(escape(run.text))
    return " ".join("".join(parts).split())


def blocks(path: Path) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each non-empty paragraph of the document's body."""
    import docx

    out: list[tuple[str, str]] = []
    number = 0
    for paragraph in docx.Document(str(path)).paragraphs:
        text = " ".join(paragraph.text.split())
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        numbered = style.startswith("List Number")
        number = number + 1 if numbered else 0
        listed = style.startswith("List") or (
            paragraph._p.pPr is not None and paragraph._p.pPr.numPr is not None
        )
        if numbered:
            out.append((f"{number}. {_inline(paragraph)}", text))
        elif listed:
            out.append((f"- {_inline(paragraph)}", text))
        elif style.startswith("Heading") and style[7:].strip().isdigit():
            out.append((f"{'#' * min(6, int(style[7:]))} {escape(text)}", text))
        elif style == "Title":
            out.append((f"# {escape(text)}", text))
        else:
            out.append((unlisted(_inline(paragraph)), text))
    return out


def read(path: Path) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each paragraph of a DOCX file, after the zip-bomb check
    ingest makes (the file may have changed since it was ingested)."""
    check_contents(path, b"", FileLimits(), ".docx")
    return blocks(path)


__all__ = ["blocks", "read"]
