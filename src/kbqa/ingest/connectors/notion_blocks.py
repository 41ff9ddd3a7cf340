"""Notion blocks as Markdown: paragraphs, headings, lists, to-dos, code, quotes, callouts,
toggles, tables and child pages, each block's children already fetched into `children`."""

from __future__ import annotations

from collections.abc import Iterable


def rich_text(parts: Iterable[dict]) -> str:
    """A rich-text array as Markdown (bold, italic, code, strikethrough, links)."""
    out = []
    for part in parts or ():
        text = part.get("plain_text") or (part.get("text") or {}).get("content", "")
        if not text:
            continue
        notes = part.get("annotations") or {}
        if notes.get("code"):
            text = f"`{text}`"
        else:
            if notes.get("bold"):
                text = f"**{text}**"
            if notes.get("italic"):
                text = f"*{text}*"
            if notes.get("strikethrough"):
                text = f"~~{text}~~"
        link = part.get("href") or ((part.get("text") or {}).get("link") or {}).get("url")
        if link and link.startswith(("http://", "https://")):
            text = f"[{text}]({link})"
        out.append(text)
    return "".join(out)


def blocks_markdown(blocks: list[dict], depth: int = 0) -> str:
    """The Markdown of a list of blocks (each with its `children` list when it has any)."""
    lines: list[str] = []
    number = 0
    for block in blocks:
        kind = block.get("type", "")
        number = number + 1 if kind == "numbered_list_item" else 0
        text = _block(block, kind, depth, number)
        if text is None:
            continue
        lines.append(text)
    return _join(lines)


def _join(lines: list[str]) -> str:
    out: list[str] = []
    for i, line in enumerate(lines):
        if i and not (_is_item(line) and _is_item(lines[i - 1])):
            out.append("")
        out.append(line)
    return "\n".join(out)


def _is_item(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith(("- ", "* ")) or stripped.split(" ", 1)[0].rstrip(".").isdigit()


def _block(block: dict, kind: str, depth: int, number: int) -> str | None:
    body = block.get(kind) or {}
    text = rich_text(body.get("rich_text", []))
    children = block.get("children") or []
    indent = "  " * depth
    inner = blocks_markdown(children, depth + 1) if children else ""
    if kind == "paragraph":
        return _with(f"{indent}{text}", blocks_markdown(children, depth) if children else "")
    if kind in ("heading_1", "heading_2", "heading_3"):
        level = int(kind[-1]) + 1 if depth == 0 else 4  # the page title is the one "# "
        return _with(f"{'#' * level} {text}", blocks_markdown(children, depth) if children else "")
    if kind == "bulleted_list_item":
        return _with(f"{indent}- {text}", inner)
    if kind == "numbered_list_item":
        return _with(f"{indent}{number}. {text}", inner)
    if kind == "to_do":
        mark = "x" if body.get("checked") else " "
        return _with(f"{indent}- [{mark}] {text}", inner)
    if kind == "toggle":
        return _with(f"{indent}- {text}", inner)
    if kind == "code":
        language = body.get("language", "")
        code = "".join(p.get("plain_text", "") for p in body.get("rich_text", []))
        return f"```{'' if language == 'plain text' else language}\n{code}\n```"
    if kind == "quote":
        return _with("\n".join(f"> {line}" for line in text.splitlines() or [""]), inner)
    if kind == "callout":
        icon = (body.get("icon") or {}).get("emoji", "")
        return _with(f"> {icon + ' ' if icon else ''}{text}", inner)
    if kind == "table":
        return _table(children, body.get("has_column_header", False))
    if kind == "child_page":
        return f"{indent}- Page: {body.get('title', '')}"
    if kind == "child_database":
        return f"{indent}- Database: {body.get('title', '')}"
    if kind in ("bookmark", "embed", "link_preview"):
        url = body.get("url", "")
        caption = rich_text(body.get("caption", []))
        return f"{indent}- [{caption or url}]({url})" if url else None
    if kind == "equation":
        return f"$${body.get('expression', '')}$$"
    if kind in ("synced_block", "column_list", "column"):
        return inner or None
    if text:  # a block type not known here, with text: keep the words
        return _with(text, inner)
    return inner or None


def _with(head: str, inner: str) -> str:
    return f"{head}\n{inner}" if inner else head


def _table(rows: list[dict], header: bool) -> str:
    cells = [
        [
            rich_text(cell).replace("|", "\\|")
            for cell in (row.get("table_row") or {}).get("cells", [])
        ]
        for row in rows
        if row.get("type") == "table_row"
    ]
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cells]
    if not header:  # Markdown tables need a header row: an empty one keeps the data as data
        lines.insert(0, "| " + " | ".join([" "] * width) + " |")
    lines.insert(1, "|" + " --- |" * width)
    return "\n".join(lines)


def property_lines(properties: dict) -> str:
    """A database row's properties (not its title) as `Name: value` lines."""
    lines = []
    for name, prop in sorted(properties.items()):
        kind = prop.get("type", "")
        value = prop.get(kind)
        if kind == "title" or value in (None, [], ""):
            continue
        if kind == "rich_text":
            value = rich_text(value)
        elif kind in ("select", "status"):
            value = value.get("name", "")
        elif kind == "multi_select":
            value = ", ".join(v.get("name", "") for v in value)
        elif kind == "date":
            value = value.get("start", "") + (f" – {value['end']}" if value.get("end") else "")
        elif kind == "people":
            value = ", ".join(p.get("name", "") or p.get("id", "") for p in value)
        elif kind in ("number", "checkbox", "url", "email", "phone_number"):
            value = str(value)
        else:
            continue
        if value:
            lines.append(f"- {name}: {value}")
    return "\n".join(lines)


def page_title(page: dict) -> str:
    """A page's title (its `title` property), or "" when it has none."""
    for prop in (page.get("properties") or {}).values():
        if prop.get("type") == "title":
            return rich_text(prop.get("title", [])).strip()
    return ""
