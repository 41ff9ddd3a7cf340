"""The blocks of an HTML source file as Markdown, with their plain text: each item of a numbered
list (`<ol>`) as "1. text", of a bulleted one as "- text", a heading as "## text", preformatted
text as a fenced code block, every other block (a paragraph, a definition, a table cell) as its
text, with inline code in backticks and the rest of its text escaped, in page order. Ingest
keeps a chunk's text plain, so a Sphinx page's numbered steps and commands reach the index as
plain paragraphs; this reads them back from the file, as markdown_blocks does for Markdown: for
the answer path's procedures and for showing a passage formatted (render/original.py). Nothing
of the page's markup passes through: the Markdown is written from the text, never copied."""

from __future__ import annotations

from pathlib import Path

from kbqa.ingest.markdown_blocks import escape, unlisted
from kbqa.ingest.partition import html_content

_BLOCKS = {"p", "pre", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th"}
_CELLS = {"dt", "dd", "td", "th"}
_CODE = {"code", "tt", "kbd", "samp"}
_SKIP = {"script", "style", "template"}


def _inline(element) -> str:
    """The element's text as one line of Markdown: inline code in backticks, the rest escaped."""
    parts: list[str] = []

    def walk(node) -> None:
        if not isinstance(node.tag, str) or node.tag in _SKIP:  # a comment, a script
            pass
        elif node.tag in _CODE:
            code = " ".join(node.text_content().split())
            if code:
                fence = "``" if "`" in code else "`"
                parts.append(f"{fence}{code}{fence}")
        else:
            parts.append(escape(node.text or ""))
            for child in node:
                walk(child)
        if node is not element:
            parts.append(escape(node.tail or ""))

    walk(element)
    return " ".join("".join(parts).split())


def _markdown(element, text: str) -> str:
    parent = element.getparent()
    if element.tag == "li" and parent is not None and parent.tag == "ol":
        number = [c for c in parent if c.tag == "li"].index(element) + 1
        return f"{number}. {_inline(element)}"
    if element.tag == "li":
        return f"- {_inline(element)}"
    if element.tag == "pre":
        code = element.text_content().strip("\n")
        fence = "~~~~" if "```" in code else "```"
        return f"{fence}\n{code}\n{fence}"
    if element.tag[0] == "h" and element.tag[1:].isdigit():
        return f"{'#' * int(element.tag[1:])} {escape(text)}"
    return unlisted(_inline(element))


def blocks(data: bytes) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each block of the page's content."""
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
        # A definition or table cell that holds paragraphs is read as those paragraphs.
        if element.tag in _CELLS and any(True for _ in element.iter(*_BLOCKS - {element.tag})):
            continue
        text = " ".join(element.text_content().split())
        if not text:
            continue
        out.append((_markdown(element, text), text))
    return out


def read(path: Path) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each block of an HTML file's content."""
    return blocks(path.read_bytes())


__all__ = ["blocks", "read"]
