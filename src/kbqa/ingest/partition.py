"""unstructured does the parsing and the chunking; we keep each chunk's heading path."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

from kbqa.errors import ParseError
from kbqa.ingest.markdown_blocks import front_matter_fields, split_front_matter
from kbqa.types import Chunk

log = logging.getLogger(__name__)

HEADING_SEPARATOR = " › "
# HTML tags by the names of HTML's elements, so that "<module>" or "<WinDLL 'kernel32'>" in a
# page's text is not taken for markup.
_ELEMENTS = (
    "a|abbr|address|article|aside|audio|b|base|bdi|bdo|blockquote|body|br|button|canvas|"
    "caption|cite|code|col|colgroup|data|dd|del|details|dfn|dialog|div|dl|dt|em|embed|"
    "fieldset|figcaption|figure|font|footer|form|h1|h2|h3|h4|h5|h6|head|header|hr|html|i|"
    "iframe|img|input|ins|kbd|label|legend|li|link|main|map|mark|meta|meter|nav|noscript|"
    "object|ol|optgroup|option|output|p|param|picture|pre|progress|q|rp|rt|ruby|s|samp|"
    "script|section|select|small|source|span|strong|style|sub|summary|sup|svg|table|tbody|td|"
    "template|textarea|tfoot|th|thead|time|title|tr|track|tt|u|ul|var|video|wbr"
)
_TAG = re.compile(
    rf"<!--.*?-->|<!doctype[^<>]*>|</?(?:{_ELEMENTS})(?:\s[^<>]*)?/?>",
    re.IGNORECASE | re.DOTALL,
)


def parsers():
    """unstructured's `partition` and `chunk_by_title`."""
    # unstructured phones home (telemetry, a notice) unless told not to; kbqa never does.
    for var in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "UNSTRUCTURED_DISABLE_NOTICE"):
        os.environ.setdefault(var, "1")
    from unstructured.chunking.title import chunk_by_title
    from unstructured.partition.auto import partition

    return partition, chunk_by_title


_loaded = False


def load_parsers() -> None:
    """Import unstructured's partitioners of every supported format, and run one on a few
    words (its first call loads language models), now rather than at the first file."""
    global _loaded
    if _loaded:
        return
    import importlib

    _, chunk_by_title = parsers()
    for name in ("md", "html", "text", "docx", "pdf", "rst"):
        try:
            importlib.import_module(f"unstructured.partition.{name}")
        except ImportError:  # an optional format's packages are missing: its files say so
            log.debug("unstructured.partition.%s cannot be imported", name)
    from unstructured.partition.md import partition_md

    chunk_by_title(partition_md(text="# Title\n\nA sentence of a few words.\n"))
    _loaded = True


_warm_pdf = False


def warm_pdf() -> None:
    """Parse a one-page PDF made here, once per process: a process's first PDF loads the
    compiled reading-order sort (numba, ~0.5 s). Workers forked after this start with it
    loaded, instead of each paying it at its first PDF."""
    global _warm_pdf
    if _warm_pdf:
        return
    _warm_pdf = True
    try:
        import pikepdf  # the pdf extra's; without it PDFs are not read at all
    except ImportError:
        return
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warm.pdf"
        pdf = pikepdf.new()
        pdf.add_blank_page(page_size=(612, 792))
        page = pdf.pages[0].obj
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.Contents = pdf.make_stream(
            b"BT /F1 12 Tf 72 720 Td (A title) Tj ET BT /F1 10 Tf 72 690 Td (A sentence.) Tj ET"
        )
        pdf.save(path)
        try:
            partition_and_chunk(path, 1200, 800, content_type="application/pdf")
        except ParseError as exc:  # only a head start: the first real PDF pays it instead
            log.debug("warming the PDF parser failed: %s", exc)


def partition_and_chunk(
    path: Path,
    max_chars: int,
    soft_max_chars: int,
    timings: dict[str, float] | None = None,
    content_type: str | None = None,
) -> tuple[str, list[Chunk]]:
    """(document title, chunks). Each chunk starts at a heading and carries its heading path.
    `content_type` (a MIME type) says which parser reads the file; unstructured guesses without."""
    partition, chunk_by_title = parsers()
    timings = {} if timings is None else timings
    started = time.perf_counter()
    page_title = ""
    try:
        source: dict = {"filename": str(path)}
        if content_type == "text/html":
            page, page_title = html_content(path.read_bytes())
            source = {"file": io.BytesIO(page), "encoding": "utf-8"}
        elif content_type == "text/markdown":
            source, page_title = _without_front_matter(path) or (source, "")
        # "fast" reads a PDF's text layer with pdfminer: no OCR, no layout models from a hub.
        elements = partition(
            **source, content_type=content_type, strategy="fast", languages=["eng"]
        )
    except ImportError as exc:
        raise ParseError(f"a parser is missing ({exc}); run scripts/setup.sh") from exc
    except Exception as exc:  # parsers raise anything from ValueError to zipfile errors
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParseError(f"cannot parse: {message[:200]}") from exc

    parsed = time.perf_counter()
    timings["parse"] = timings.get("parse", 0.0) + parsed - started
    elements = [e for e in elements if (e.text or "").strip()]
    for element in elements:
        if element.category == "Table" and getattr(element.metadata, "text_as_html", None):
            element.text = table_text(element.metadata.text_as_html) or element.text
    titles = [e for e in elements if e.category == "Title"]
    # A page's own heading is the one its <title> begins with ("FAQ: General" of "FAQ: General
    # — Django documentation"); what comes before it is the site's banner and navigation.
    own = next((e for e in titles if f"{page_title} ".startswith(f"{e.text.strip()} ")), None)
    if own is not None:
        elements = elements[elements.index(own) :]
    paths = _heading_paths(elements)
    first = own or (titles[0] if titles else None)
    title = first.text.strip() if first is not None else page_title
    if content_type == "text/markdown" and page_title:
        title = page_title  # the front matter's `title:` names the page, not its first heading
    if content_type == "text/plain":
        # Plain text marks no title: its headings are lines the partitioner guesses, all at one
        # level ("OVERVIEW", "WHEN TO ESCALATE"), none heading the others. The file's name
        # names the document (files.py), as for a file with no heading, and each heading its
        # section: "Kafka consumer lag › WHAT THE ALERT MEANS", never a heading alone.
        title = ""
    sections = chunk_by_title(
        elements,
        max_characters=max_chars,
        new_after_n_chars=soft_max_chars,
        # Keep small sections apart: a precise heading makes a precise citation.
        combine_text_under_n_chars=0,
        multipage_sections=True,
    )
    chunks: list[Chunk] = []
    for section in sections:
        originals = section.metadata.orig_elements or []
        if originals and all(e.category == "Title" for e in originals):
            continue  # a heading with no body of its own; it lives on in the next heading path
        first = originals[0] if originals else None
        heading = paths.get(first.id, []) if first is not None else []
        text = section.text.strip()
        chunks.append(Chunk(text, HEADING_SEPARATOR.join(heading), position=len(chunks)))
    timings["chunk"] = timings.get("chunk", 0.0) + time.perf_counter() - parsed
    return title, chunks


def _without_front_matter(path: Path) -> tuple[dict, str] | None:
    """(the partition source of a Markdown file less its front matter, the front matter's
    `title:`), or None when it has none. Its `updated:` and `author:` are read from the file
    itself (times.py); the text indexed must hold none of it."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:  # UTF-16: passed to the partitioner as it is
        return None
    front, body = split_front_matter(text)
    if not front:
        return None
    source = {"file": io.BytesIO(body.encode("utf-8")), "encoding": "utf-8"}
    return source, front_matter_fields(front).get("title", "")


# Navigation, search boxes, scripts and Sphinx's "¶" heading links: no part of a page's text.
_CHROME = (
    "//nav | //script | //style | //noscript | //template"
    " | //*[@role='navigation' or @role='search']"
    " | //a[contains(concat(' ', normalize-space(@class), ' '), ' headerlink ')]"
)


def html_content(data: bytes) -> tuple[bytes, str]:
    """(the page's content as UTF-8 HTML, its <title>). The content is its one <main> (or
    role="main") where it declares one, less navigation, scripts and heading links."""
    import lxml.html
    from lxml import etree

    page: str | bytes = data  # not UTF-8: lxml reads the charset the page declares
    with contextlib.suppress(UnicodeDecodeError):
        # lxml takes bytes without a declared charset for Latin-1; UTF-8 is far more common.
        page = re.sub(r"^\s*<\?xml[^>]*>", "", data.decode("utf-8-sig"), count=1)
    try:
        root = lxml.html.document_fromstring(page)
    except (etree.ParserError, ValueError):
        return data, ""  # no element at all: the partitioner reports it
    page_title = " ".join((root.findtext(".//title") or "").split())
    mains = root.xpath("//main | //*[@role='main']")
    if len(mains) == 1:
        body = root.find("body")
        if body is not None and mains[0] is not body:
            for child in list(body):
                body.remove(child)
            body.append(mains[0])
    for element in root.xpath(_CHROME):
        if element.getparent() is not None:
            element.drop_tree()
    return lxml.html.tostring(root, encoding="utf-8"), page_title


def markup_share(text: str) -> float:
    """The share of a text's characters inside HTML tags (0 to 1)."""
    tags = sum(len(m.group()) for m in _TAG.finditer(text))
    return tags / len(text) if text else 0.0


def _heading_paths(elements: list) -> dict[str, list[str]]:
    """Element id -> the titles above it, outermost first, from each Title's depth."""
    stack: list[tuple[int, str]] = []
    out: dict[str, list[str]] = {}
    for element in elements:
        if element.category == "Title":
            depth = element.metadata.category_depth or 0
            while stack and stack[-1][0] >= depth:
                stack.pop()
            stack.append((depth, element.text.strip()))
        out[element.id] = [text for _, text in stack]
    return out


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_text(html: str) -> str:
    """A table as one line per row, each cell named by its column: "Service: route-planner;
    Port: 7200; ...". Flattened to plain text, a table loses its rows, and neither a reader nor
    a model can tell which port belongs to which service."""
    parser = _Cells()
    parser.feed(html)
    rows = [r for r in parser.rows if any(r)]
    if len(rows) < 2:
        return ""
    header, body = rows[0], rows[1:]
    lines = []
    for row in body:
        cells = [
            f"{name}: {value}" if name else value
            for name, value in zip(header, row, strict=False)
            if value
        ]
        lines.append("; ".join(cells) + ".")
    return "\n".join(lines)
