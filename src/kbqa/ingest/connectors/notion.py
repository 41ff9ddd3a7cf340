"""Notion (API version 2022-06-28): every page the integration can see, database rows
included, through `POST /v1/search`; each page's blocks recursed into Markdown.

Notion does not show an integration who else a page is shared with, so access is per workspace:
every page carries the principal `notion-workspace:<name>`; grant that to the audiences whose
people are members of the workspace."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from kbqa.errors import ConfigError
from kbqa.ingest.connectors.base import Access, Content, ItemError, Listing, RemoteItem
from kbqa.ingest.connectors.config import SourceConfig, need_token
from kbqa.ingest.connectors.http import Http, RemoteError
from kbqa.ingest.connectors.notion_blocks import blocks_markdown, page_title, property_lines

log = logging.getLogger(__name__)

NOTION_VERSION = "2022-06-28"
MAX_DEPTH = 12  # nested blocks deeper than this are left out (Notion nests lists freely)
# Blocks whose children are pages or databases of their own, listed by the search.
OWN_PAGES = ("child_page", "child_database")


class NotionGateway:
    """Every Notion call the connector makes; plain dicts back."""

    def __init__(self, http: Http):
        self.http = http

    def search(self) -> Iterator[dict]:
        """Every page and database shared with the integration, page by page."""
        body: dict = {"page_size": 100}
        while True:
            page = self.http.post_json("/v1/search", body)
            yield from page.get("results", [])
            if not page.get("has_more") or not page.get("next_cursor"):
                return
            body = {**body, "start_cursor": page["next_cursor"]}

    def children(self, block_id: str) -> list[dict]:
        params: dict = {"page_size": 100}
        out: list[dict] = []
        while True:
            page = self.http.get_json(f"/v1/blocks/{block_id}/children", params)
            out += page.get("results", [])
            if not page.get("has_more") or not page.get("next_cursor"):
                return out
            params = {**params, "start_cursor": page["next_cursor"]}

    def tree(self, block_id: str, depth: int = 0) -> list[dict]:
        """The blocks under `block_id`, each with its own `children` filled in."""
        blocks = self.children(block_id)
        for block in blocks:
            nested = block.get("has_children") and block.get("type") not in OWN_PAGES
            if nested and depth < MAX_DEPTH:
                block["children"] = self.tree(block["id"], depth + 1)
        return blocks


class NotionConnector:
    kind = "notion"

    def __init__(self, name: str, gateway: NotionGateway, workspace: str, roots: tuple[str, ...]):
        self.name, self.gateway = name, gateway
        self.workspace = workspace
        self.access = Access(groups=(f"notion-workspace:{workspace}",))
        self.roots = {_plain(r) for r in roots}

    def list(self, cursor: str | None) -> Listing:
        found: dict[str, dict] = {}
        complete, problems = True, []
        try:
            for result in self.gateway.search():
                found[_plain(result["id"])] = result
        except RemoteError as exc:
            if not found:  # not one page read (a refused token): the sync failed
                raise
            complete = False
            problems.append(("search", f"{exc}: the listing is not complete, nothing is pruned"))
        items = [
            self._item(obj)
            for obj in found.values()
            if obj.get("object") == "page"
            and not (obj.get("archived") or obj.get("in_trash"))
            and self._in_scope(obj, found)
        ]
        return Listing(items, complete=complete, problems=problems)

    def _in_scope(self, obj: dict, found: dict[str, dict]) -> bool:
        """Under one of the scope's pages or databases (all pages when there is no scope)."""
        if not self.roots:
            return True
        seen = set()
        while obj and _plain(obj["id"]) not in seen:
            oid = _plain(obj["id"])
            if oid in self.roots:
                return True
            seen.add(oid)
            parent = obj.get("parent") or {}
            pid = parent.get(parent.get("type", ""), "")
            obj = found.get(_plain(pid)) if isinstance(pid, str) else None
            if obj is None and isinstance(pid, str) and _plain(pid) in self.roots:
                return True
        return False

    def _item(self, page: dict) -> RemoteItem:
        edited = page.get("last_edited_time", "")
        return RemoteItem(
            id=page["id"],
            version=f"{edited}|{self.workspace}",
            title=page_title(page) or "Untitled",
            url=page.get("url", ""),
            updated_at=edited,
            author=(page.get("last_edited_by") or {}).get("name", ""),
            access=self.access,
            extra={"properties": page.get("properties") or {}, "parent": page.get("parent", {})},
        )

    def fetch(self, item: RemoteItem) -> Content:
        try:
            blocks = self.gateway.tree(item.id)
        except RemoteError as exc:
            raise ItemError(f"{item.title}: {exc.reason or exc}") from None
        parts = [f"# {item.title}"]
        if (item.extra.get("parent") or {}).get("type") == "database_id":
            parts.append(property_lines(item.extra.get("properties") or {}))
        parts.append(blocks_markdown(blocks))
        return Content(markdown="\n\n".join(p for p in parts if p.strip()) + "\n")


def _plain(notion_id: str) -> str:
    """An id without its dashes: Notion writes ids both ways."""
    return notion_id.replace("-", "").lower()


def build(config: SourceConfig) -> NotionConnector:
    """Notion from a `[[sources]]` entry: `token_env` an internal integration's secret, option
    `workspace` (default the source's name) for the access principal, `scope` page ids."""
    workspace = config.options.get("workspace", config.name)
    if not isinstance(workspace, str) or not workspace.strip():
        raise ConfigError(f"source '{config.name}': workspace must be a non-empty string")
    url = config.url if config.url.startswith("http") else "https://api.notion.com"
    http = Http(
        url,
        headers={
            "Authorization": f"Bearer {need_token(config)}",
            "Notion-Version": NOTION_VERSION,
        },
    )
    return NotionConnector(config.name, NotionGateway(http), workspace.strip(), config.scope)
