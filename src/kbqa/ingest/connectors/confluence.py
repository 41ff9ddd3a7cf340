"""Confluence Cloud: the pages of the configured spaces (REST v2, `_links.next` cursors), each
page's read restrictions (v1) joined with its ancestors' and its space's permissions into who may
open it, the storage-format body flattened to Markdown, and PDF/DOCX attachments parsed as files.

The listing is complete every time (a few calls per hundred pages), so a deleted page or space
is pruned; a page's fingerprint is its version number with its access, so an edit or a
permission change re-reads that page alone."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbqa.errors import ConfigError, ParseError
from kbqa.ingest.connectors.base import Access, Content, ItemError, Listing, RemoteItem
from kbqa.ingest.connectors.config import SourceConfig, need_token
from kbqa.ingest.connectors.http import Http, RemoteError, RetryPolicy

log = logging.getLogger(__name__)

# Attachments read through the file parsers; others (images, archives) are not documents.
ATTACHMENT_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}


@dataclass
class Page:
    id: str
    title: str
    space_id: str
    parent_id: str | None
    version: int
    updated_at: str
    author: str
    webui: str


@dataclass
class Space:
    id: str
    key: str
    name: str
    # Whether anonymous users may read it (a public space); its read principals otherwise.
    anonymous: bool = False
    principals: list[str] = field(default_factory=list)


class ConfluenceApi:
    """Every call kbqa makes to Confluence Cloud; plain data back."""

    prefix = "/wiki"  # where the REST APIs and the pages' links live on the site

    def __init__(self, http: Http, page_size: int = 250):
        self.http, self.page_size = http, page_size

    def _pages_of(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        for page in self.http.paginate(path, params, lambda p: p.get("_links", {}).get("next")):
            yield from page.get("results", [])

    def spaces(self, keys: tuple[str, ...]) -> list[Space]:
        params: dict[str, Any] = {"limit": self.page_size}
        if keys:
            params["keys"] = ",".join(keys)
        return [
            Space(str(s["id"]), s["key"], s.get("name", s["key"]))
            for s in self._pages_of("/wiki/api/v2/spaces", params)
        ]

    def space_permissions(self, space_id: str) -> list[dict]:
        """[{"principal": {"type", "id"}, "operation": {"key", "targetType"}}]"""
        return list(self._pages_of(f"/wiki/api/v2/spaces/{space_id}/permissions", {"limit": 250}))

    def pages(self, space_id: str) -> Iterator[Page]:
        params = {"space-id": space_id, "limit": self.page_size, "status": "current"}
        for p in self._pages_of("/wiki/api/v2/pages", params):
            version = p.get("version") or {}
            yield Page(
                id=str(p["id"]),
                title=p.get("title", ""),
                space_id=str(p.get("spaceId", space_id)),
                parent_id=str(p["parentId"]) if p.get("parentId") else None,
                version=int(version.get("number", 0)),
                updated_at=version.get("createdAt", p.get("createdAt", "")),
                author=version.get("authorId", p.get("authorId", "")),
                webui=(p.get("_links") or {}).get("webui", ""),
            )

    def read_restrictions(self, page_id: str) -> tuple[list[str], list[str]]:
        """(groups, users) that a page's own read restriction names; both empty: none."""
        path = f"{self.prefix}/rest/api/content/{page_id}/restriction/byOperation/read"
        body = self.http.get_json(path, {"expand": "restrictions.user,restrictions.group"})
        return _names(body.get("restrictions", {}))

    def body(self, page_id: str) -> str:
        page = self.http.get_json(f"/wiki/api/v2/pages/{page_id}", {"body-format": "storage"})
        return ((page.get("body") or {}).get("storage") or {}).get("value", "")

    def _v1_next(self, page: dict) -> str | None:
        link = page.get("_links", {}).get("next")
        # v1 links are relative to the site's context path (/wiki); v2's include it.
        return f"{self.prefix}{link}" if link and link.startswith("/rest/") else link

    def _search(self, cql: str, expand: str) -> Iterator[dict]:
        """v1 CQL search results, page by page."""
        params = {"cql": cql, "expand": expand, "limit": min(self.page_size, 100)}
        path = f"{self.prefix}/rest/api/content/search"
        for page in self.http.paginate(path, params, self._v1_next):
            yield from page.get("results", [])

    def restrictions_in(self, space_key: str) -> dict[str, tuple[list[str], list[str]]]:
        """Page id -> (groups, users) of its own read restriction, for a whole space in one
        paged listing (CQL with the restrictions expanded) instead of a call per page."""
        expand = "restrictions.read.restrictions.user,restrictions.read.restrictions.group"
        found = {}
        for result in self._search(f'type=page AND space="{space_key}"', expand):
            read = ((result.get("restrictions") or {}).get("read") or {}).get("restrictions", {})
            found[str(result["id"])] = _names(read)
        return found

    def attachments(self, space_key: str) -> list[dict]:
        """A space's attachments in one paged listing (v1 CQL), each with its page's id."""
        return list(self._search(f'type=attachment AND space="{space_key}"', "version,container"))

    def download(self, path: str) -> bytes:
        return self.http.get_bytes(path)


class DataCenterApi(ConfluenceApi):
    """Confluence Data Center / Server: the v1 REST API only (no v2, no space permissions over
    REST: a page's readers are its space's principal, narrowed by its restrictions)."""

    prefix = ""

    def spaces(self, keys: tuple[str, ...]) -> list[Space]:
        params: dict[str, Any] = {"limit": min(self.page_size, 100)}
        if keys:
            params["spaceKey"] = list(keys)
        found = []
        for page in self.http.paginate("/rest/api/space", params, self._v1_next):
            found += [Space(s["key"], s["key"], s.get("name", s["key"])) for s in page["results"]]
        return found

    def space_permissions(self, space_id: str) -> list[dict]:
        return []

    def pages(self, space_id: str) -> Iterator[Page]:
        params = {
            "spaceKey": space_id,
            "type": "page",
            "status": "current",
            "expand": "version,ancestors",
            "limit": min(self.page_size, 100),
        }
        for page in self.http.paginate("/rest/api/content", params, self._v1_next):
            for p in page.get("results", []):
                version = p.get("version") or {}
                ancestors = p.get("ancestors") or []
                by = version.get("by") or {}
                yield Page(
                    id=str(p["id"]),
                    title=p.get("title", ""),
                    space_id=space_id,
                    parent_id=str(ancestors[-1]["id"]) if ancestors else None,
                    version=int(version.get("number", 0)),
                    updated_at=version.get("when", ""),
                    author=by.get("username") or by.get("accountId", ""),
                    webui=(p.get("_links") or {}).get("webui", ""),
                )

    def body(self, page_id: str) -> str:
        page = self.http.get_json(f"/rest/api/content/{page_id}", {"expand": "body.storage"})
        return ((page.get("body") or {}).get("storage") or {}).get("value", "")


class ConfluenceConnector:
    kind = "confluence"

    def __init__(self, name: str, api: ConfluenceApi, spaces: tuple[str, ...], options: dict):
        self.name, self.api, self.space_keys = name, api, spaces
        self.attachments = bool(options.get("attachments", True))
        self.workers = int(options.get("workers", 8))
        # "bulk": one CQL listing per space; "per-page": a call per page (Data Center servers
        # that do not expand restrictions in search).
        self.per_page = options.get("restrictions", "bulk") == "per-page"
        self.site = api.http.base_url

    def list(self, cursor: str | None) -> Listing:
        listing = Listing(items=[], complete=True)
        spaces = self.api.spaces(self.space_keys)
        missing = set(self.space_keys) - {s.key for s in spaces}
        for key in sorted(missing):
            # Not visible to this credential (or gone): its pages must not be pruned on a typo.
            listing.problems.append((f"space {key}", "not found or not readable"))
            listing.complete = False
        for space in spaces:
            try:
                self._space_access(space)
                pages = list(self.api.pages(space.id))
            except RemoteError as exc:
                listing.problems.append((f"space {space.key}", str(exc)))
                listing.complete = False
                continue
            items = self._items(space, pages, listing)
            if self.attachments:
                items += self._attachment_items(space, items, listing)
            listing.items += items
        return listing

    def _space_access(self, space: Space) -> None:
        for grant in self.api.space_permissions(space.id):
            operation = grant.get("operation", {})
            if operation.get("key") != "read" or operation.get("targetType") != "space":
                continue
            principal = grant.get("principal", {})
            if principal.get("type") == "anonymous":
                space.anonymous = True
            elif principal.get("type") == "group":
                space.principals.append(f"confluence-group:{principal.get('id')}")
            elif principal.get("type") == "user":
                space.principals.append(f"confluence-user:{principal.get('id')}")

    def _items(self, space: Space, pages: list[Page], listing: Listing) -> list[RemoteItem]:
        by_id = {p.id: p for p in pages}
        if self.per_page:
            with ThreadPoolExecutor(max(1, self.workers)) as pool:
                found = dict(zip(by_id, pool.map(self._restrictions, by_id), strict=True))
        else:
            try:
                found = self.api.restrictions_in(space.key)
            except RemoteError as exc:
                listing.problems.append((f"space {space.key} (restrictions)", str(exc)))
                found = {}  # every page's access unknown: restricted until the next sync
        items = []
        for page in pages:
            access = self._access(space, page, by_id, found)
            if access is None:
                listing.problems.append((page.title, "its read restrictions could not be read"))
                access = Access()  # unknown: restricted
            item = RemoteItem(
                id=page.id,
                version=_version(page.version, access),
                title=page.title,
                url=f"{self.site}{self.api.prefix}{page.webui}" if page.webui else "",
                updated_at=page.updated_at,
                author=page.author,
                access=access,
                extra={"space": space.key},
            )
            items.append(item)
        return items

    def _restrictions(self, page_id: str) -> tuple[list[str], list[str]] | None:
        try:
            return self.api.read_restrictions(page_id)
        except RemoteError as exc:
            log.info("page %s: %s", page_id, exc)
            return None

    def _access(self, space: Space, page: Page, by_id: dict, found: dict) -> Access | None:
        """The space's readers, narrowed by the page's and each ancestor's read restrictions:
        a principal must pass every level (fail closed where a level names others)."""
        if space.anonymous:
            allowed: set[str] | None = None
        else:
            allowed = {f"confluence-space:{space.key}", *space.principals}
        node: Page | None = page
        seen: set[str] = set()
        restricted = False
        while node is not None and node.id not in seen:
            seen.add(node.id)
            own = found.get(node.id)
            if own is None:
                return None
            groups, users = own
            if groups or users:
                names = {f"confluence-group:{g}" for g in groups} | {
                    f"confluence-user:{u}" for u in users
                }
                allowed = names if allowed is None or not restricted else allowed & names
                restricted = True
            node = by_id.get(node.parent_id) if node.parent_id else None
        if allowed is None:
            return Access(public=True)
        groups = tuple(sorted(p for p in allowed if not p.startswith("confluence-user:")))
        users = tuple(sorted(p for p in allowed if p.startswith("confluence-user:")))
        return Access(groups=groups, users=users)

    def _attachment_items(self, space: Space, pages: list[RemoteItem], listing: Listing):
        """PDF and DOCX attachments of the listed pages, each seen by whoever sees its page."""
        by_id = {p.id: p for p in pages}
        try:
            found = self.api.attachments(space.key)
        except RemoteError as exc:
            listing.problems.append((f"space {space.key} (attachments)", str(exc)))
            listing.complete = False
            return []
        out = []
        for a in found:
            media = (a.get("metadata") or {}).get("mediaType") or (a.get("extensions") or {}).get(
                "mediaType", ""
            )
            page = by_id.get(str((a.get("container") or {}).get("id", "")))
            suffix = ATTACHMENT_TYPES.get(media)
            if suffix is None or page is None:
                continue
            version = a.get("version") or {}
            links = a.get("_links") or {}
            out.append(
                RemoteItem(
                    id=f"{page.id}/attachments/{a['id']}",
                    version=_version(int(version.get("number", 0)), page.access),
                    title=f"{page.title} — {a.get('title', a['id'])}",
                    url=f"{self.site}{self.api.prefix}{links['webui']}"
                    if links.get("webui")
                    else page.url,
                    updated_at=version.get("when", page.updated_at),
                    author=(version.get("by") or {}).get("accountId", ""),
                    access=page.access,
                    extra={"download": links.get("download", ""), "suffix": suffix},
                )
            )
        return out

    def fetch(self, item: RemoteItem) -> Content:
        from kbqa.ingest.connectors.confluence_markup import storage_to_markdown

        try:
            if "download" in item.extra:
                return self._download(item)
            storage = self.api.body(item.id)
        except RemoteError as exc:
            raise ItemError(str(exc)) from exc
        try:
            text = storage_to_markdown(storage)
        except ParseError as exc:
            raise ItemError(str(exc)) from exc
        return Content(markdown=f"# {item.title}\n\n{text}")

    def _download(self, item: RemoteItem) -> Content:
        link = str(item.extra["download"])
        prefix = self.api.prefix
        if not link.startswith(("http://", "https://")) and not link.startswith(f"{prefix}/"):
            link = f"{prefix}{link}"
        data = self.api.download(link)
        suffix = str(item.extra["suffix"])
        with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as f:
            f.write(data)
        return Content(file=Path(f.name), filename=f"{item.title}{suffix}")


def _names(restrictions: dict) -> tuple[list[str], list[str]]:
    groups = [
        g.get("name") or g.get("id", "") for g in restrictions.get("group", {}).get("results", [])
    ]
    users = [
        u.get("accountId") or u.get("username", "")
        for u in restrictions.get("user", {}).get("results", [])
    ]
    return [g for g in groups if g], [u for u in users if u]


def _version(number: int, access: Access) -> str:
    digest = hashlib.sha1(json.dumps(access.as_dict(), sort_keys=True).encode()).hexdigest()
    return f"{number}:{digest[:12]}"


def build(config: SourceConfig, retry: RetryPolicy | None = None) -> ConfluenceConnector:
    """A Confluence connector: `url` the site (https://acme.atlassian.net, or a Data Center's
    base URL with `deployment = "datacenter"`), `scope` the space keys (none: every space the
    credential reads), `user_env` the account's email for Cloud's basic auth (unset: the token
    is a Data Center personal access token, sent as Bearer)."""
    token = need_token(config)
    auth = (config.user, token) if config.user else None
    headers = {} if auth else {"Authorization": f"Bearer {token}"}
    http = Http(config.url, headers=headers, auth=auth, retry=retry)
    deployment = config.options.get("deployment", "cloud")
    if deployment not in ("cloud", "datacenter"):
        raise ConfigError(f"source '{config.name}': deployment must be cloud or datacenter")
    kind = DataCenterApi if deployment == "datacenter" else ConfluenceApi
    api = kind(http, int(config.options.get("page_size", 250)))
    return ConfluenceConnector(config.name, api, config.scope, dict(config.options))
