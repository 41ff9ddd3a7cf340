"""The blocks of a Markdown source file as written: headings, list items with their
continuation lines, fenced code, tables, paragraphs. Ingest keeps a chunk's text plain (list
numbers and backticks gone: `plain` is that form), so what a chunk held as structure (a
numbered procedure, a command) is read back from its file here — by the page, to show a passage
formatted, and by the answer path, to quote a procedure whole. When the file is gone or
changed, nothing is found and callers fall back to the plain text."""

from __future__ import annotations

import re
from pathlib import Path

ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
# Front matter: a first line `---`, YAML, a line `---` or `...`. Its lines must read as YAML
# (a `key:` first, then keys, indented or listed values, comments), so that a page opening
# with a rule and a setext heading is not taken for it.
_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.M | re.S
)
_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*?))?[ \t]*$")
_YAML_MORE = re.compile(r"^(?:[ \t]+\S|-[ \t]|-$|#)")


# What Markdown would read as markup in a document's plain text, and a line that opens like a
# list item (a paragraph "2. Not a step." must not become one).
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_OPENS_AS_ITEM = re.compile(r"^(\d{1,9})([.)])(?=\s)|^([-+])(?=\s)")


def escape(text: str) -> str:
    """Plain text as Markdown that shows it as written."""
    return _SPECIAL.sub(r"\\\1", text)


def unlisted(line: str) -> str:
    """A line of Markdown that does not open a list item by accident."""
    return _OPENS_AS_ITEM.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", line)


def plain(markdown: str) -> str:
    """Markdown as ingest reads it: no list marks, emphasis, backticks or link targets."""
    text = _LINK.sub(r"\1", markdown)
    text = re.sub(r"^\s*#{1,6}\s+", "", text, flags=re.M)
    text = ITEM.sub("", text)
    text = text.replace("`", "").replace("**", "").replace("__", "")
    return " ".join(text.split())


def split_front_matter(markdown: str) -> tuple[str, str]:
    """(front matter, the rest) of a Markdown text; ("", markdown) when it has none."""
    match = _FRONT_MATTER.match(markdown)
    if not match:
        return "", markdown
    lines = [line for line in match.group(1).splitlines() if line.strip()]
    if not lines or not _KEY.match(lines[0]):
        return "", markdown
    if not all(_KEY.match(line) or _YAML_MORE.match(line) for line in lines):
        return "", markdown
    return match.group(1), markdown[match.end() :]


def front_matter_fields(front: str) -> dict[str, str]:
    """The top-level `key: value` lines of front matter, keys lower-cased, values unquoted."""
    fields: dict[str, str] = {}
    for line in front.splitlines():
        match = _KEY.match(line)
        if match and match.group(2):
            fields.setdefault(match.group(1).lower(), match.group(2).strip("'\""))
    return fields


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
        elif line.lstrip().startswith("#") or ITEM.match(line):
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


def read(path: Path) -> list[tuple[str, str]]:
    """(Markdown, plain text) of each block of a Markdown file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    _, body = split_front_matter(text)  # not indexed, so never a passage
    return [(b, plain(b)) for b in blocks(body)]


__all__ = [
    "ITEM",
    "blocks",
    "escape",
    "front_matter_fields",
    "plain",
    "read",
    "split_front_matter",
    "unlisted",
]
