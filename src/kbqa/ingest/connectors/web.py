"""A docs site: robots.txt (with Crawl-delay), the sitemap (an index, gzipped) or else the
same-site links under the base path, conditional GETs (the ETag or Last-Modified is the
version: a 304 costs no download and no parse), and trafilatura for each page's main text."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from kbqa.errors import ConfigError, MissingDependencyError
from kbqa.ingest.connectors.base import (
    Access,
    Content,
    ItemError,
    Listing,
    RemoteItem,
    iso_seconds,
)
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.http import Http, RemoteError
from kbqa.ingest.connectors.web_pages import http_date_iso, links_and_title, read_sitemap

log = logging.getLogger(__name__)

USER_AGENT = "kbqa-docs-sync/1.0"
# Content types read as files (the file parsers' suffixes); HTML goes through trafilatura.
FILE_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "text/markdown": ".md",
    "text/plain": ".txt",
}


@dataclass
class Page:
    status: int
    url: str  # after redirects
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class WebGateway:
    """Every request the web connector makes; plain data back."""

    def __init__(self, http: Http):
        self.http = http

    def get(self, url: str, etag: str = "", modified: str = "") -> Page:
        """GET `url`, conditional when an ETag or Last-Modified is known; a 4xx is a Page."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        try:
            response = self.http.request("GET", url, headers=headers)
        except RemoteError as exc:
            if 400 <= exc.status < 500:
                return Page(exc.status, url)
            raise
        return Page(
            response.status_code,
            str(response.url),
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )


class WebConnector:
    kind = "web"

    def __init__(
        self,
        name: str,
        base_url: str,
        gateway: WebGateway,
        scope: tuple[str, ...] = (),
        max_depth: int = 5,
        max_pages: int = 1000,
        public: bool = False,
        recheck_days: float = 7.0,
    ):
        self.name, self.gateway = name, gateway
        parts = urlsplit(base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        paths = tuple("/" + p.lstrip("/") for p in scope) or (parts.path or "/",)
        # A base path "/docs" also covers "/docs/…"; the start pages are the paths themselves.
        self.starts = [urljoin(self.origin, p) for p in paths]
        self.prefixes = tuple(p if p.endswith("/") else p + "/" for p in paths) + paths
        self.max_depth, self.max_pages = max_depth, max_pages
        self.access = Access(public=True) if public else Access(groups=(f"web:{name}",))
        self.recheck_days = recheck_days
        self.pause: Callable[[float], None] = time.sleep  # tests record the crawl delay
        self.now: Callable[[], float] = time.time
        self._bodies: dict[str, tuple[str, bytes]] = {}  # url -> (content type, body) to parse

    # --- listing ------------------------------------------------------------------------
    def list(self, cursor: str | None) -> Listing:
        known: dict[str, dict] = json.loads(cursor)["pages"] if cursor else {}
        self._bodies.clear()
        problems: list[tuple[str, str]] = []
        robots, why = self._robots()
        if robots is None:
            return Listing([], complete=False, problems=[(f"{self.origin}/robots.txt", why)])
        delay = float(robots.crawl_delay(USER_AGENT) or 0)
        sitemap, complete = self._sitemap(robots, problems)
        listed = [url for url in sitemap if self._wanted(url, robots)]
        if listed:
            queue = deque((url, 0) for url in listed)
            follow = False
        else:  # no sitemap, or none that covers the base path: follow the links
            queue = deque((url, 0) for url in self.starts if robots.can_fetch(USER_AGENT, url))
            follow = True
        seen = {url for url, _ in queue}
        pages: dict[str, dict] = {}
        items: list[RemoteItem] = []
        removed: list[str] = []
        first = True
        while queue:
            url, depth = queue.popleft()
            if len(pages) >= self.max_pages:
                complete = False
                problems.append(
                    (
                        self.origin,
                        f"stopped at max_pages={self.max_pages}: "
                        "the listing is not complete, nothing is pruned",
                    )
                )
                break
            lastmod = "" if follow else sitemap.get(url, "")
            entry, status = self._unchanged(known.get(url), lastmod), 304
            if entry is None:
                if not first and delay:
                    self.pause(delay)
                first = False
                entry, status = self._visit(url, known.get(url), lastmod)
            if status in (404, 410):
                removed += [url] if url in known else []
                continue
            if entry is None:  # failed: keep what was known of it, so it is not pruned
                problems.append((url, f"HTTP {status}" if status else "not reachable"))
                if url in known:
                    entry = known[url]
                else:
                    complete = False
                    continue
            if entry.get("skip"):
                continue
            final = entry.pop("final", url)
            if final != url and (final in pages or not self._wanted(final, robots)):
                continue
            pages[final] = entry
            items.append(self._item(final, entry))
            if not follow:
                continue
            for link in entry.get("links", []):
                if link in seen or not self._wanted(link, robots):
                    continue
                if depth + 1 > self.max_depth:
                    if complete:
                        problems.append(
                            (
                                url,
                                f"links beyond max_depth={self.max_depth} not "
                                "followed: the listing is not complete",
                            )
                        )
                    complete = False
                    continue
                seen.add(link)
                queue.append((link, depth + 1))
        cursor_out = json.dumps({"pages": pages}, sort_keys=True, separators=(",", ":"))
        return Listing(
            items, complete=complete, removed=removed, cursor=cursor_out, problems=problems
        )

    def _robots(self) -> tuple[RobotFileParser | None, str]:
        robots = RobotFileParser()
        try:
            page = self.gateway.get(f"{self.origin}/robots.txt")
        except RemoteError as exc:
            # RFC 9309: an unreachable robots.txt means the whole site is disallowed.
            return None, f"robots.txt unreachable ({exc.reason}): nothing crawled"
        if page.status >= 400:
            robots.allow_all = True  # RFC 9309: a 4xx robots.txt means no rules
        else:
            robots.parse(page.body.decode("utf-8", "replace").splitlines())
        return robots, ""

    def _sitemap(
        self, robots: RobotFileParser, problems: list[tuple[str, str]]
    ) -> tuple[dict[str, str], bool]:
        """url -> lastmod of every page the sitemap(s) list ({} when there is none), and
        whether every sitemap was read."""
        todo = deque(robots.site_maps() or [f"{self.origin}/sitemap.xml"])
        named, urls, complete, done = bool(robots.site_maps()), {}, True, set()
        while todo and len(done) < 200:
            where = todo.popleft()
            if where in done:
                continue
            done.add(where)
            try:
                page = self.gateway.get(where)
            except RemoteError as exc:
                page = Page(exc.status or 599, where)
            if page.status >= 400:
                if named or page.status >= 500:
                    problems.append((where, f"sitemap not read (HTTP {page.status})"))
                    complete = complete and not named
                continue
            try:
                children, entries = read_sitemap(page.body)
            except ValueError as exc:
                problems.append((where, f"sitemap not read: {exc}"))
                complete = False
                continue
            todo.extend(children)
            urls.update(entries)
        return urls, complete

    def _wanted(self, url: str, robots: RobotFileParser) -> bool:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            return False
        if not (parts.path in self.prefixes or parts.path.startswith(self.prefixes)):
            return False
        return robots.can_fetch(USER_AGENT, url)

    def _unchanged(self, known: dict | None, lastmod: str) -> dict | None:
        """The page's stored entry when the sitemap says it has not changed since it was last
        fetched (the same lastmod, older than that fetch) and a recheck is not due; else None.
        The recheck finds what a stale sitemap still lists after it is gone."""
        if not (known and lastmod and self.recheck_days and known.get("lastmod") == lastmod):
            return None
        checked, now = iso_seconds(known.get("checked", "")), self.now()
        # A date alone may cover edits later that day: count it from the day's end.
        edited = iso_seconds(lastmod) + (86400 if len(lastmod) <= 10 else 0)
        if edited > checked or now - checked > self.recheck_days * 86400:
            return None
        return dict(known)

    def _visit(self, url: str, known: dict | None, lastmod: str) -> tuple[dict | None, int]:
        """The cursor entry of `url` (its version, title, date and links), from a conditional
        GET; (None, status) when it failed."""
        known = known or {}
        try:
            page = self.gateway.get(url, known.get("etag", ""), known.get("modified", ""))
        except RemoteError as exc:
            return None, exc.status
        checked = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now()))
        if page.status == 304 and known:
            return {**known, "lastmod": lastmod, "checked": checked}, 304
        if page.status >= 400 or page.status == 304:
            return None, page.status
        kind = page.headers.get("content-type", "").split(";")[0].strip().lower()
        entry = {"final": _clean(page.url)}
        if kind not in ("text/html", "application/xhtml+xml") and kind not in FILE_TYPES:
            return {"skip": True}, page.status
        etag, modified = page.headers.get("etag", ""), page.headers.get("last-modified", "")
        entry.update(
            etag=etag,
            modified=modified,
            version=etag or modified or hashlib.sha256(page.body).hexdigest()[:20],
            updated=http_date_iso(modified) or lastmod,
            lastmod=lastmod,
            checked=checked,
        )
        if kind in FILE_TYPES:
            entry["title"] = Path(urlsplit(page.url).path).name
        else:
            links, title = links_and_title(page.body, page.url)
            entry.update(title=title, links=[_clean(link) for link in links])
        self._bodies[entry["final"]] = (kind, page.body)
        return entry, page.status

    def _item(self, url: str, entry: dict) -> RemoteItem:
        scope = "public" if self.access.public else "restricted"
        return RemoteItem(
            id=url,
            version=f"{entry['version']}|{scope}",
            title=entry.get("title") or url,
            url=url,
            updated_at=entry.get("updated", ""),
            access=self.access,
        )

    # --- content ------------------------------------------------------------------------
    def fetch(self, item: RemoteItem) -> Content:
        kind, body = self._bodies.pop(item.id, ("", b""))
        if not body:
            page = self.gateway.get(item.url)
            if page.status >= 400:
                raise ItemError(f"{item.url}: HTTP {page.status}")
            kind = page.headers.get("content-type", "").split(";")[0].strip().lower()
            body = page.body
        if kind in FILE_TYPES:
            suffix = FILE_TYPES[kind]
            with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
                tmp.write(body)
            name = Path(urlsplit(item.url).path).name or f"page{suffix}"
            return Content(file=Path(tmp.name), filename=name)
        return Content(markdown=main_text(body, item.url))


def main_text(html: bytes, url: str) -> str:
    """The page's main text as Markdown (headings, lists, code blocks and tables kept)."""
    try:
        import trafilatura
    except ImportError as exc:
        raise MissingDependencyError("trafilatura", "connectors") from exc
    text = trafilatura.extract(
        html.decode("utf-8", "replace"),
        url=url,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_comments=False,
    )
    if not text or not text.strip():
        raise ItemError(f"{url}: no main text found")
    return text


def _clean(url: str) -> str:
    """`url` without its fragment (one page, however it is linked)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def build(config: SourceConfig) -> WebConnector:
    """A docs site from a `[[sources]]` entry: `url` the site (its path the base path unless
    `scope` names base paths), options `max_depth`, `max_pages`, `access = "public"`,
    `recheck_days` (a page the sitemap says is unchanged is fetched again after this many
    days; 0: every sync)."""
    options = dict(config.options)
    access = options.get("access", "restricted")
    if access not in ("public", "restricted"):
        raise ConfigError(f'source \'{config.name}\': access must be "public" or "restricted"')
    for key in ("max_depth", "max_pages"):
        if key in options and (not isinstance(options[key], int) or options[key] < 1):
            raise ConfigError(f"source '{config.name}': {key} must be a whole number >= 1")
    recheck = options.get("recheck_days", 7)
    if isinstance(recheck, bool) or not isinstance(recheck, int | float) or recheck < 0:
        raise ConfigError(f"source '{config.name}': recheck_days must be a number >= 0")
    if not urlsplit(config.url).scheme.startswith("http"):
        raise ConfigError(f"source '{config.name}': url must be an http(s) URL")
    http = Http(config.url, headers={"User-Agent": USER_AGENT})
    return WebConnector(
        config.name,
        config.url,
        WebGateway(http),
        scope=config.scope,
        max_depth=options.get("max_depth", 5),
        max_pages=options.get("max_pages", 1000),
        public=access == "public",
        recheck_days=float(recheck),
    )
