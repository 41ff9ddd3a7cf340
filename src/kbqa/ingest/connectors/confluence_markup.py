"""Confluence storage format (XHTML with `ac:`/`ri:` macros) flattened to Markdown with lxml:
headings, lists, tables and links kept; the code macro fenced; info/note/warning/tip panels as
quotes; expand's title and body kept; toc, images and other chrome dropped."""

from __future__ import annotations

import html.entities
import re

from kbqa.errors import ParseError

_NS = {
    "ac": "http://atlassian.com/content",
    "ri": "http://atlassian.com/resource/identifier",
}
_AC = "{" + _NS["ac"] + "}"
_RI = "{" + _NS["ri"] + "}"
_PANELS = {"info": "Info", "note": "Note", "warning": "Warning", "tip": "Tip", "panel": ""}
_DROPPED = {"toc", "children", "pagetree", "recently-updated", "anchor", "jira", "status"}
_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}


def _entities(text: str) -> str:
    """HTML's named entities (&nbsp;, &mdash;) as characters: XML knows only five."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name in _XML_ENTITIES:
            return match.group(0)
        char = html.entities.html5.get(f"{name};")
        return char if char is not None else match.group(0)

    return re.sub(r"&([A-Za-z][A-Za-z0-9]*);", one, text)


def storage_to_markdown(storage: str) -> str:
    """The Markdown of a page's storage-format body; ParseError if it cannot be read."""
    from lxml import etree

    namespaces = " ".join(f'xmlns:{k}="{v}"' for k, v in _NS.items())
    document = f"<root {namespaces}>{_entities(storage)}</root>"
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(document.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"cannot read the page's storage format: {exc}") from exc
    if root is None:
        raise ParseError("cannot read the page's storage format")
    text = _blocks(root)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _local(tag) -> str:
    if not isinstance(tag, str):
        return ""  # a comment or processing instruction
    return tag.rsplit("}", 1)[-1]


def _blocks(element) -> str:
    """The Markdown of an element's children as blocks."""
    out: list[str] = []
    inline: list[str] = [_clean(element.text)]
    for child in element:
        tag = _local(child.tag)
        if tag in _BLOCK or (tag in _AC_BLOCK and str(child.tag).startswith(_AC)):
            flushed = "".join(inline).strip()
            if flushed:
                out.append(flushed)
            inline = []
            block = _block(child)
            if block.strip():
                out.append(block.strip("\n"))
        else:
            inline.append(_inline(child))
        inline.append(_clean(child.tail))
    flushed = "".join(inline).strip()
    if flushed:
        out.append(flushed)
    return "\n\n".join(out)


def _block(element) -> str:
    tag = _local(element.tag)
    if isinstance(element.tag, str) and element.tag.startswith(_AC):
        return _macro(element)
    if re.fullmatch(r"h[1-6]", tag):
        return f"{'#' * int(tag[1])} {_inline_children(element).strip()}"
    if tag in ("p", "div", "section", "span", "root", "ac:layout"):
        return _blocks(element)
    if tag in ("ul", "ol"):
        return _list(element, tag == "ol", 0)
    if tag == "table":
        return _table(element)
    if tag == "pre":
        return f"```\n{''.join(element.itertext()).strip()}\n```"
    if tag == "blockquote":
        return _quote(_blocks(element))
    if tag == "hr":
        return "---"
    return _blocks(element)


def _macro(element) -> str:
    tag = _local(element.tag)
    if tag in ("layout", "layout-section", "layout-cell", "rich-text-body"):
        return _blocks(element)
    if tag == "task-list":
        items = [_inline_children(t.find(f"{_AC}task-body")) for t in element.iter(f"{_AC}task")]
        return "\n".join(f"- {i.strip()}" for i in items if i is not None)
    if tag not in ("structured-macro", "macro"):
        return ""  # ac:image, ac:emoticon, ac:placeholder: nothing to read
    name = element.get(f"{_AC}name", "")
    params = {
        p.get(f"{_AC}name", ""): "".join(p.itertext()).strip()
        for p in element.findall(f"{_AC}parameter")
    }
    body = element.find(f"{_AC}rich-text-body")
    if name in ("code", "noformat"):
        plain = element.find(f"{_AC}plain-text-body")
        code = (plain.text or "") if plain is not None else ""
        return f"```{params.get('language', '')}\n{code.strip(chr(10))}\n```"
    if name in _PANELS:
        label = params.get("title") or _PANELS[name]
        inner = _blocks(body) if body is not None else ""
        head = f"**{label}:** " if label else ""
        return _quote(f"{head}{inner}")
    if name == "expand":
        title = params.get("title") or "Details"
        inner = _blocks(body) if body is not None else ""
        return f"**{title}**\n\n{inner}"
    if name in _DROPPED:
        return ""
    return _blocks(body) if body is not None else ""


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.strip().splitlines())


def _list(element, ordered: bool, depth: int) -> str:
    lines = []
    n = 0
    for item in element:
        if _local(item.tag) != "li":
            continue
        n += 1
        marker = f"{n}." if ordered else "-"
        text_parts, nested = [_clean(item.text)], []
        for child in item:
            tag = _local(child.tag)
            if tag in ("ul", "ol"):
                nested.append(_list(child, tag == "ol", depth + 1))
            elif tag == "p":
                text_parts.append(" " + _inline_children(child))
            else:
                text_parts.append(_inline(child))
            text_parts.append(_clean(child.tail))
        lines.append(f"{'  ' * depth}{marker} {' '.join(''.join(text_parts).split())}")
        lines.extend(nested)
    return "\n".join(lines)


def _table(element) -> str:
    rows = []
    for row in element.iter("tr", "{*}tr"):
        cells = [
            " ".join(_inline_children(c).split()).replace("|", "\\|")
            for c in row
            if _local(c.tag) in ("td", "th")
        ]
        if cells:
            rows.append(cells)
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = [f"| {' | '.join(rows[0])} |", f"|{' --- |' * width}"]
    lines += [f"| {' | '.join(r)} |" for r in rows[1:]]
    return "\n".join(lines)


def _inline_children(element) -> str:
    if element is None:
        return ""
    parts = [_clean(element.text)]
    for child in element:
        parts.append(_inline(child))
        parts.append(_clean(child.tail))
    return "".join(parts)


def _inline(element) -> str:
    tag = _local(element.tag)
    inner = _inline_children(element)
    if tag in ("strong", "b"):
        return f"**{inner.strip()}**" if inner.strip() else ""
    if tag in ("em", "i"):
        return f"*{inner.strip()}*" if inner.strip() else ""
    if tag == "code":
        return f"`{inner}`"
    if tag == "br":
        return "\n"
    if tag == "a":
        href = element.get("href", "")
        return f"[{inner.strip() or href}]({href})" if href else inner
    if tag == "link":  # ac:link to a page, a user or an attachment
        body = element.find(f"{_AC}link-body")
        if body is None:
            body = element.find(f"{_AC}plain-text-link-body")
        label = "".join(body.itertext()).strip() if body is not None else ""
        target = next(iter(element), None)
        if target is not None and _local(target.tag) == "page":
            label = label or target.get(f"{_RI}content-title", "")
        if target is not None and _local(target.tag) == "user":
            label = label or "@" + target.get(f"{_RI}account-id", "someone")
        return label
    if tag in ("image", "emoticon", "placeholder"):
        return ""
    if tag in ("structured-macro", "macro"):
        return _macro(element)
    return inner


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", text) if text else ""


_AC_BLOCK = {
    "structured-macro",
    "macro",
    "layout",
    "layout-section",
    "layout-cell",
    "task-list",
    "rich-text-body",
}
_BLOCK = {
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "div",
    "section",
    "ul",
    "ol",
    "table",
    "pre",
    "blockquote",
    "hr",
}
