"""An answer as the web page and its event stream take it: JSON-able dicts and SSE frames.
Text the page shows as formatted (the answer, each quoted unit, each passage) comes with its
HTML, rendered here from Markdown with markdown-it-py and sanitised with nh3: raw HTML in a
passage is shown as text, never run."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from kbqa.render import original, rows
from kbqa.render.model import Source, cached_line, why_no_answer
from kbqa.types import Answer, Evidence, Hit

_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "ol",
    "ul",
    "li",
    "blockquote",
    "a",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "del",
}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"scope"}}
_markdown = None
_code_spans = None


def html(text: str) -> str:
    """Markdown as safe HTML: CommonMark with tables; a table row as a small table of its own
    (header, value), which fits a phone's width."""
    pairs = rows.cells(text)
    if pairs:
        body = "".join(
            f'<tr><th scope="row">{_escape(h)}</th><td>{_inline(v)}</td></tr>' for h, v in pairs
        )
        return f'<table class="row"><tbody>{body}</tbody></table>'
    # A wide table scrolls inside its own box, never the page.
    return (
        _clean(_md().render(text))
        .replace("<table>", '<div class="scroll"><table>')
        .replace("</table>", "</table></div>")
    )


def _md():
    global _markdown
    if _markdown is None:
        from markdown_it import MarkdownIt

        # "html": False escapes raw HTML in the text instead of passing it through.
        _markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return _markdown


def code_html(text: str) -> str:
    """Plain text (a title, a label) as safe HTML with its `code` spans as <code>: nothing
    else of Markdown is read, so a title's "__init__" or "*" stays as written."""
    global _code_spans
    if _code_spans is None:
        from markdown_it import MarkdownIt

        _code_spans = MarkdownIt("zero").enable("backticks")
    return _clean(_code_spans.renderInline(text))


def _inline(text: str) -> str:
    return _clean(_md().renderInline(text))


def _clean(markup: str) -> str:
    import nh3

    return nh3.clean(
        markup, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"}
    ).strip()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def file_link(uri: str) -> str:
    """The page's link to a file document (served by serve/files.py to those who may see it)."""
    return "/files/" + quote(uri.lstrip("/"))


def source_data(source: Source) -> dict[str, Any]:
    data = {**source.to_dict(), "html": html(original.passage(source.hit) or source.hit.text)}
    if data["link"] is None and data["kind"] == "file" and uri_is_path(source.hit.uri):
        data["link"] = file_link(source.hit.uri)
    return data


def uri_is_path(uri: str) -> bool:
    return "://" not in uri and uri.startswith("/")


def sources(answer: Answer) -> dict[str, list[dict[str, Any]]]:
    """The cited and the retrieved passages with label, where, link and age."""
    return {
        "citations": [source_data(Source(c.n, c.hit)) for c in answer.citations],
        "hits": [source_data(Source(None, h)) for h in answer.hits],
    }


def answer_data(answer: Answer) -> dict[str, Any]:
    """The answer's JSON (as `kbqa ask --json` prints it), with `why` when it abstained and
    `cached_line` when it was served from the answer cache."""
    data = answer.to_dict()
    hits = {c.n: c.hit for c in answer.citations}
    data["evidence"] = [
        {**e, "html": unit_html(item, hits.get(item.n))}
        for e, item in zip(data["evidence"], answer.evidence, strict=True)
    ]
    # A pointed answer's HTML is its units as the evidence shows them (steps, commands as
    # code), each a quote with its citation; other answers' is their text as Markdown.
    quotes = (f'<blockquote data-n="{e["n"]}">{e["html"]}</blockquote>' for e in data["evidence"])
    data["html"] = "" if answer.abstained else "".join(quotes) or html(answer.text)
    if answer.cached_at:
        data["cached_line"] = cached_line(answer)
    return {**data, "why": why_no_answer(answer)} if answer.abstained else data


def unit_html(evidence: Evidence, hit: Hit | None) -> str:
    """A quoted unit as its source file writes it (a numbered step, a command as code), when
    that can be found; else its text as Markdown. A sentence quoted with its neighbours is
    prose: the quote as Markdown."""
    text = evidence.text
    if evidence.before or evidence.after:
        return html(evidence.quote)
    return html((original.unit(hit, text) if hit is not None else None) or rows.readable(text))


def evidence_data(evidence: Evidence) -> dict[str, Any]:
    """A unit as the `evidence` event carries it: a quote, copied from passage [n]."""
    return {
        "n": evidence.n,
        "text": evidence.text,
        "span": evidence.span,
        "before": evidence.before,
        "after": evidence.after,
        "probability": round(evidence.probability, 4),
        "quote": True,
        "html": html(rows.in_context(evidence, rows.readable(evidence.text))),
    }


def sse(event: str, data: Any) -> str:
    """One server-sent event (data on one line: JSON never holds a raw newline)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
