"""What the web connector reads out of a page or a sitemap without parsing its text: the
links and title of an HTML page, the entries of a sitemap (an index or a urlset, gzipped or not)."""

from __future__ import annotations

import gzip
import io
import zlib
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import urljoin
from xml.etree import ElementTree

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps protocol's own limit, uncompressed


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base = ""
        self.title: list[str] = []
        self._in_title = False
        self.nofollow = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "a" and values.get("href") and "nofollow" not in values.get("rel", ""):
            self.hrefs.append(values["href"])
        elif tag == "base" and values.get("href") and not self.base:
            self.base = values["href"]
        elif tag == "title":
            self._in_title = True
        elif tag == "meta" and values.get("name", "").lower() == "robots":
            self.nofollow = "nofollow" in values.get("content", "").lower()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)


def links_and_title(html: bytes, url: str) -> tuple[list[str], str]:
    """The absolute http(s) links of a page (none under `<meta name=robots nofollow>`) and its
    <title>."""
    parser = _Links()
    parser.feed(html.decode("utf-8", "replace"))
    parser.close()
    base = urljoin(url, parser.base) if parser.base else url
    links = [] if parser.nofollow else [urljoin(base, href.strip()) for href in parser.hrefs]
    title = " ".join("".join(parser.title).split())
    return [link for link in links if link.startswith(("http://", "https://"))], title


def read_sitemap(data: bytes) -> tuple[list[str], dict[str, str]]:
    """(child sitemaps, {page url: lastmod}) of a sitemap index or urlset; ValueError when it is
    neither."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(MAX_SITEMAP_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"a broken gzip file ({exc})") from None
        if len(data) > MAX_SITEMAP_BYTES:
            raise ValueError("larger than 50 MB uncompressed")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not XML ({exc})") from None
    tag = root.tag.rsplit("}", 1)[-1]
    if tag not in ("sitemapindex", "urlset"):
        raise ValueError(f"not a sitemap (<{tag}>)")
    children: list[str] = []
    pages: dict[str, str] = {}
    for entry in root:
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in entry}
        loc = fields.get("loc", "")
        if not loc:
            continue
        if tag == "sitemapindex":
            children.append(loc)
        else:
            pages[loc] = iso_date(fields.get("lastmod", ""))
    return children, pages


def iso_date(value: str) -> str:
    """A sitemap's W3C datetime as ISO 8601 UTC (a date alone stays a date: it does not say
    when in the day); "" if unread."""
    from datetime import UTC, datetime

    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if len(value) <= 10:
        return when.strftime("%Y-%m-%d")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date_iso(value: str) -> str:
    """An HTTP date (Last-Modified) as ISO 8601 UTC; "" if absent or unreadable."""
    from datetime import UTC

    if not value:
        return ""
    try:
        return parsedate_to_datetime(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, IndexError):
        return ""
