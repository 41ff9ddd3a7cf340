"""Confluence Cloud on 127.0.0.1, as its REST API documents it: v2 spaces, space permissions
and pages (`_links.next` cursors, short pages), a page's storage body, v1 read restrictions,
v1 CQL search for attachments, downloads; 404 and 401 error bodies; faults queued per path."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from .mockserver import MockServer, Reply, page_of


@dataclass
class MockPage:
    title: str
    space: str
    body: str
    parent: str | None = None
    version: int = 1
    when: str = "2026-11-01T09:00:00.000Z"
    author: str = "557058:ada"
    groups: list[str] = field(default_factory=list)  # read restriction: groups
    users: list[str] = field(default_factory=list)  # read restriction: account ids


@dataclass
class MockAttachment:
    page: str
    title: str
    media_type: str
    data: bytes
    version: int = 1


class MockConfluence(MockServer):
    """State: `spaces` (key -> {"id", "name", "anonymous", "groups"}), `pages` (id -> MockPage),
    `attachments` (id -> MockAttachment). Tests edit it between syncs."""

    def __init__(self, max_page: int = 25, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_page = max_page
        self.spaces: dict[str, dict] = {}
        self.pages: dict[str, MockPage] = {}
        self.attachments: dict[str, MockAttachment] = {}
        self.route("GET", r"/wiki/api/v2/spaces", self._spaces)
        self.route("GET", r"/wiki/api/v2/spaces/(\d+)/permissions", self._permissions)
        self.route("GET", r"/wiki/api/v2/pages", self._pages)
        self.route("GET", r"/wiki/api/v2/pages/(\d+)", self._page)
        # The v1 API and downloads live under /wiki on Cloud, at the root on Data Center.
        self.route(
            "GET",
            r"(?:/wiki)?/rest/api/content/(\d+)/restriction/byOperation/read",
            self._restriction,
        )
        self.route("GET", r"(?:/wiki)?/rest/api/content/search", self._search)
        self.route("GET", r"(?:/wiki)?/download/attachments/(\d+)/(att\d+)", self._download)
        # Data Center only: spaces and pages over v1.
        self.route("GET", r"/rest/api/space", self._v1_spaces)
        self.route("GET", r"/rest/api/content", self._v1_pages)
        self.route("GET", r"/rest/api/content/(\d+)", self._v1_page)

    # -- fixture helpers --------------------------------------------------------------------
    def add_space(self, key: str, anonymous: bool = False, groups: tuple[str, ...] = ()) -> None:
        self.spaces[key] = {
            "id": str(1000 + len(self.spaces)),
            "name": f"{key} space",
            "anonymous": anonymous,
            "groups": list(groups),
        }

    def edit(self, page_id: str, body: str) -> None:
        page = self.pages[page_id]
        page.body, page.version = body, page.version + 1
        page.when = "2026-12-01T10:00:00.000Z"

    def _space_by_id(self, space_id: str) -> tuple[str, dict] | None:
        return next(((k, s) for k, s in self.spaces.items() if s["id"] == space_id), None)

    # -- the API ----------------------------------------------------------------------------
    def _next(self, path: str, params: dict, cursor: str | None) -> dict:
        if cursor is None:
            return {}
        return {"next": f"{path}?{urlencode({**params, 'cursor': cursor})}"}

    def _spaces(self, params) -> Reply:
        keys = params.get("keys", "")
        wanted = [k for k in keys.split(",") if k] if keys else list(self.spaces)
        rows = [
            {"id": s["id"], "key": k, "name": s["name"], "type": "global", "status": "current"}
            for k, s in self.spaces.items()
            if k in wanted
        ]
        chunk, cursor = page_of(rows, params, self.max_page)
        return Reply(
            body={"results": chunk, "_links": self._next("/wiki/api/v2/spaces", params, cursor)}
        )

    def _permissions(self, space_id, params) -> Reply:
        found = self._space_by_id(space_id)
        if found is None:
            return Reply(
                404, {"errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found"}]}
            )
        _, space = found
        grants = [
            {
                "id": f"g{i}",
                "principal": {"type": "group", "id": g},
                "operation": {"key": "read", "targetType": "space"},
            }
            for i, g in enumerate(space["groups"])
        ]
        if space["anonymous"]:
            grants.append(
                {
                    "id": "anon",
                    "principal": {"type": "anonymous", "id": None},
                    "operation": {"key": "read", "targetType": "space"},
                }
            )
        grants.append(
            {
                "id": "w",
                "principal": {"type": "group", "id": "writers"},
                "operation": {"key": "create", "targetType": "page"},
            }
        )
        chunk, cursor = page_of(grants, params, self.max_page)
        path = f"/wiki/api/v2/spaces/{space_id}/permissions"
        return Reply(body={"results": chunk, "_links": self._next(path, params, cursor)})

    def _page_json(self, page_id: str, page: MockPage) -> dict:
        return {
            "id": page_id,
            "status": "current",
            "title": page.title,
            "spaceId": self.spaces[page.space]["id"],
            "parentId": page.parent,
            "authorId": page.author,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "version": {"number": page.version, "createdAt": page.when, "authorId": page.author},
            "_links": {"webui": f"/spaces/{page.space}/pages/{page_id}"},
        }

    def _pages(self, params) -> Reply:
        found = self._space_by_id(params.get("space-id", ""))
        if found is None:
            return Reply(
                400,
                {
                    "errors": [
                        {
                            "status": 400,
                            "code": "INVALID_REQUEST_PARAMETER",
                            "title": "space-id is invalid",
                        }
                    ]
                },
            )
        key, _ = found
        rows = [self._page_json(i, p) for i, p in sorted(self.pages.items()) if p.space == key]
        chunk, cursor = page_of(rows, params, self.max_page)
        return Reply(
            body={"results": chunk, "_links": self._next("/wiki/api/v2/pages", params, cursor)}
        )

    def _page(self, page_id, params) -> Reply:
        page = self.pages.get(page_id)
        if page is None:
            return Reply(
                404, {"errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found"}]}
            )
        body = self._page_json(page_id, page)
        if params.get("body-format") == "storage":
            body["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        return Reply(body=body)

    def _restriction(self, page_id, params) -> Reply:
        page = self.pages.get(page_id)
        if page is None:
            return self.not_found(page_id)
        return Reply(
            body={
                "operation": "read",
                "restrictions": {
                    "user": {
                        "results": [{"type": "known", "accountId": u} for u in page.users],
                        "size": len(page.users),
                    },
                    "group": {
                        "results": [
                            {"type": "group", "name": g, "id": f"id-{g}"} for g in page.groups
                        ],
                        "size": len(page.groups),
                    },
                },
            }
        )

    def _search(self, params) -> Reply:
        cql = params.get("cql", "")
        space = cql.split('space="', 1)[1].split('"', 1)[0] if 'space="' in cql else ""
        if cql.startswith("type=page"):
            return self._page_search(space, params)
        if not cql.startswith("type=attachment"):
            return Reply(400, {"statusCode": 400, "message": f"Could not parse cql : {cql}"})
        rows = []
        for att_id, a in sorted(self.attachments.items()):
            page = self.pages.get(a.page)
            if page is None or page.space != space:
                continue
            rows.append(
                {
                    "id": att_id,
                    "type": "attachment",
                    "title": a.title,
                    "metadata": {"mediaType": a.media_type},
                    "version": {
                        "number": a.version,
                        "when": "2026-11-02T00:00:00.000Z",
                        "by": {"accountId": page.author},
                    },
                    "container": {"id": a.page, "type": "page"},
                    "_links": {
                        "download": f"/download/attachments/{a.page}/{att_id}?version={a.version}",
                        "webui": f"/pages/viewpageattachments.action?pageId={a.page}",
                    },
                }
            )
        chunk, cursor = page_of(rows, params, self.max_page)
        links = {"base": f"{self.url}/wiki"}
        if cursor is not None:
            links["next"] = f"/rest/api/content/search?{urlencode({**params, 'cursor': cursor})}"
        return Reply(body={"results": chunk, "size": len(chunk), "_links": links})

    def _page_search(self, space: str, params) -> Reply:
        expanded = "restrictions.read.restrictions" in params.get("expand", "")
        rows = []
        for page_id, page in sorted(self.pages.items()):
            if page.space != space:
                continue
            row = {"id": page_id, "type": "page", "status": "current", "title": page.title}
            if expanded:
                row["restrictions"] = {"read": self._restriction(page_id, {}).body}
            rows.append(row)
        chunk, cursor = page_of(rows, params, self.max_page)
        links = {"base": f"{self.url}/wiki"}
        if cursor is not None:
            links["next"] = f"/rest/api/content/search?{urlencode({**params, 'cursor': cursor})}"
        return Reply(body={"results": chunk, "size": len(chunk), "_links": links})

    def _v1_links(self, path: str, params: dict, cursor: str | None) -> dict:
        links = {"base": self.url, "context": ""}
        if cursor is not None:
            links["next"] = f"{path}?{urlencode({**params, 'cursor': cursor})}"
        return links

    def _v1_spaces(self, params) -> Reply:
        keys = [k for k in params.get("spaceKey", "").split(",") if k] or list(self.spaces)
        rows = [
            {"id": int(s["id"]), "key": k, "name": s["name"], "type": "global"}
            for k, s in self.spaces.items()
            if k in keys
        ]
        chunk, cursor = page_of(rows, params, self.max_page)
        return Reply(
            body={"results": chunk, "_links": self._v1_links("/rest/api/space", params, cursor)}
        )

    def _v1_page_json(self, page_id: str, page: MockPage) -> dict:
        ancestors, parent = [], page.parent
        while parent is not None and parent in self.pages:
            ancestors.insert(0, {"id": parent, "type": "page"})
            parent = self.pages[parent].parent
        return {
            "id": page_id,
            "type": "page",
            "status": "current",
            "title": page.title,
            "version": {"number": page.version, "when": page.when, "by": {"username": page.author}},
            "ancestors": ancestors,
            "_links": {"webui": f"/display/{page.space}/{page.title.replace(' ', '+')}"},
        }

    def _v1_pages(self, params) -> Reply:
        key = params.get("spaceKey", "")
        if key not in self.spaces or params.get("type") != "page":
            return Reply(404, {"statusCode": 404, "message": f"No space with key : {key}"})
        rows = [self._v1_page_json(i, p) for i, p in sorted(self.pages.items()) if p.space == key]
        chunk, cursor = page_of(rows, params, self.max_page)
        links = self._v1_links("/rest/api/content", params, cursor)
        return Reply(body={"results": chunk, "size": len(chunk), "_links": links})

    def _v1_page(self, page_id, params) -> Reply:
        page = self.pages.get(page_id)
        if page is None:
            return self.not_found(page_id)
        body = self._v1_page_json(page_id, page)
        if "body.storage" in params.get("expand", ""):
            body["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        return Reply(body=body)

    def _download(self, page_id, att_id, params) -> Reply:
        a = self.attachments.get(att_id)
        if a is None or a.page != page_id:
            return self.not_found(att_id)
        return Reply(body=a.data)
