"""A small docs site on 127.0.0.1: robots.txt with a Disallow and a Crawl-delay, a gzipped
sitemap index with lastmod dates (or none, for the link crawl), ETags and Last-Modified with
conditional GET, a page that changes, one that is deleted (404 after; `stale` keeps it in the
sitemap), a PDF, and a page outside the base path."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from .mock_loopback import Call, MockService, Reply

ROOT = Path(__file__).resolve().parents[2]
PDF = (ROOT / "examples" / "handbook" / "policies" / "expenses.pdf").read_bytes()


def page(title: str, body: str, links: tuple[str, ...] = ()) -> str:
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<nav><ul>{nav}</ul></nav><main><article><h1>{title}</h1>{body}</article></main>"
        "<footer>© Lark Docs · all rights reserved</footer></body></html>"
    )


def site() -> dict[str, tuple[str, str]]:
    """path -> (content type, body) of the fixture site."""
    html = "text/html; charset=utf-8"
    return {
        "/docs/": (
            html,
            page(
                "Lark documentation",
                "<p>Welcome to the Lark documentation. Start with installing larkctl, then read "
                "the deployment guide and the expenses policy.</p>",
                (
                    "install",
                    "deploy.html",
                    "/docs/old",
                    "/docs/private/keys",
                    "guide.pdf",
                    "/blog/news",
                    "https://elsewhere.example/docs/x",
                    "#top",
                    "mailto:docs@lark.dev",
                ),
            ),
        ),
        "/docs/install": (
            html,
            page(
                "Installing larkctl",
                "<p>Install larkctl with pipx so that it lives in its own environment and "
                "stays out of the system Python.</p><h2>Verify</h2><p>Run the version command; "
                "it prints the build hash.</p><pre><code>pipx install larkctl\nlarkctl --version"
                "</code></pre>",
                ("/docs/", "deploy.html", "/docs/install/advanced"),
            ),
        ),
        "/docs/install/advanced": (
            html,
            page(
                "Advanced installation",
                "<p>Offline installs take the wheel from the release page and point pip at the "
                "local folder with the find-links flag.</p>",
                ("/docs/install",),
            ),
        ),
        "/docs/deploy.html": (
            html,
            page(
                "Deploying Lark",
                "<p>Deploys go out through the blue-green pipeline; the canary takes ten percent "
                "of traffic for fifteen minutes.</p><h2>Rollback</h2><p>Roll back with larkctl "
                "rollback and the previous release tag.</p>",
                ("/docs/",),
            ),
        ),
        "/docs/old": (
            html,
            page(
                "Old release notes",
                "<p>Release 0.9 dropped the legacy sqlite backend and the quokka exporter.</p>",
            ),
        ),
        "/docs/private/keys": (
            html,
            page(
                "Signing keys",
                "<p>The release signing key passphrase is kept in the vault under zebra-42.</p>",
            ),
        ),
        "/docs/guide.pdf": ("application/pdf", PDF),  # type: ignore[dict-item]
        "/blog/news": (html, page("News", "<p>Lark 2.0 is out with a faster planner.</p>")),
    }


EPOCH = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


class MockSite(MockService):
    """`sitemap=True` serves a gzipped sitemap index named in robots.txt; False serves none, so
    the connector follows links. `etags=False` drops ETags (Last-Modified only)."""

    def __init__(self, sitemap: bool = True, etags: bool = True, crawl_delay: int = 1) -> None:
        super().__init__()
        self.pages: dict[str, tuple[str, str | bytes]] = dict(site())
        self.modified: dict[str, datetime] = dict.fromkeys(self.pages, EPOCH)
        self.sitemap, self.etags, self.crawl_delay = sitemap, etags, crawl_delay
        self.robots_extra = ""  # more robots.txt lines, e.g. a new Disallow
        self.stale: set[str] = set()  # paths the sitemap still lists after they are deleted

    def edit(self, path: str, content: str) -> None:
        with self.lock:
            kind = self.pages[path][0]
            self.pages[path] = (kind, content)
            self.modified[path] = datetime.now(UTC)

    def delete(self, path: str) -> None:
        with self.lock:
            del self.pages[path]

    def fetched(self, path: str) -> list[int]:
        """For each GET of `path`: whether it was conditional (1) or not (0)."""
        return [
            int("if-none-match" in c.headers or "if-modified-since" in c.headers)
            for c in self.calls
            if c.path == path
        ]

    def robots(self) -> str:
        lines = ["User-agent: *", "Disallow: /docs/private/", f"Crawl-delay: {self.crawl_delay}"]
        lines += self.robots_extra.splitlines()
        if self.sitemap:
            lines.append(f"Sitemap: {self.url}/sitemap_index.xml.gz")
        return "\n".join(lines) + "\n"

    def serve(self, call: Call) -> Reply:
        if call.path == "/robots.txt":
            return Reply(200, self.robots().encode(), {"Content-Type": "text/plain"})
        if self.sitemap and call.path == "/sitemap_index.xml.gz":
            return _gz(_index(self.url, ["/sitemap-docs.xml.gz", "/sitemap-blog.xml"]))
        if self.sitemap and call.path == "/sitemap-docs.xml.gz":
            docs = [p for p in self.pages if p.startswith("/docs/")] + list(self.stale)
            return _gz(_urlset(self.url, sorted(set(docs)), self.modified))
        if self.sitemap and call.path == "/sitemap-blog.xml":
            body = _urlset(self.url, ["/blog/news"], self.modified).encode()
            return Reply(200, body, {"Content-Type": "application/xml"})
        if call.path not in self.pages:
            return Reply(404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"})
        kind, body = self.pages[call.path]
        data = body if isinstance(body, bytes) else body.encode()
        modified = self.modified[call.path]
        headers = {"Content-Type": kind, "Last-Modified": format_datetime(modified, usegmt=True)}
        etag = f'"{hashlib.sha1(data).hexdigest()[:16]}"'
        if self.etags:
            headers["ETag"] = etag
            if call.headers.get("if-none-match") == etag:
                return Reply(304, b"", headers)
        since = call.headers.get("if-modified-since")
        if since and not self.etags and parsedate_to_datetime(since) >= modified:
            return Reply(304, b"", headers)
        return Reply(200, data, headers)


def _gz(xml: str) -> Reply:
    return Reply(200, gzip.compress(xml.encode()), {"Content-Type": "application/x-gzip"})


def _index(base: str, maps: list[str]) -> str:
    entries = "".join(f"<sitemap><loc>{base}{m}</loc></sitemap>" for m in maps)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'
    )


def _urlset(base: str, paths: list[str], modified: dict[str, datetime]) -> str:
    entries = "".join(
        f"<url><loc>{base}{p}</loc><lastmod>{modified.get(p, EPOCH).date()}</lastmod></url>"
        for p in paths
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    )
