"""The Notion API (2022-06-28) on 127.0.0.1: `POST /v1/search` and
`GET /v1/blocks/{id}/children` with start_cursor paging, Notion's error bodies (400
missing_version, 401, 404 object_not_found for what is not shared), 429 rate_limited (with and
without Retry-After, through `fail`), and a call log. Tests edit, archive and unshare pages."""

from __future__ import annotations

import json
import uuid

from .mock_loopback import Call, MockService, Reply

TOKEN = "secret_test-notion-integration"
RATE_LIMITED = json.dumps(
    {
        "object": "error",
        "status": 429,
        "code": "rate_limited",
        "message": "You have been rate limited. Please try again in a few minutes.",
    }
).encode()


def nid(name: str) -> str:
    """A stable Notion-style id (a dashed uuid) for a fixture name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"notion:{name}"))


def rt(text: str, **annotations) -> list[dict]:
    return [
        {
            "type": "text",
            "text": {"content": text, "link": None},
            "plain_text": text,
            "annotations": {"bold": False, "italic": False, "code": False, **annotations},
            "href": None,
        }
    ]


def block(kind: str, text: str = "", children: list | None = None, **body) -> dict:
    content = (
        {"rich_text": rt(text), **body} if text or kind not in ("table", "child_page") else body
    )
    return {
        "object": "block",
        "id": nid(f"{kind}:{text}:{len(children or [])}:{uuid.uuid4()}"),
        "type": kind,
        kind: content,
        "has_children": bool(children),
        "_children": children or [],
    }


def table_row(*cells: str) -> dict:
    return {
        "object": "block",
        "id": str(uuid.uuid4()),
        "type": "table_row",
        "table_row": {"cells": [rt(c) for c in cells]},
        "has_children": False,
        "_children": [],
    }


def fixture() -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """(objects by id: pages and databases, blocks under each page)."""

    def page(name, title, parent, props=None):
        return {
            "object": "page",
            "id": nid(name),
            "created_time": "2026-10-01T08:00:00.000Z",
            "last_edited_time": "2026-11-02T09:30:00.000Z",
            "archived": False,
            "in_trash": False,
            "parent": parent,
            "last_edited_by": {"object": "user", "id": nid("user:ana")},
            "url": f"https://www.notion.so/{title.replace(' ', '-')}-{nid(name).replace('-', '')}",
            "properties": {
                "title" if parent["type"] != "database_id" else "Name": {
                    "id": "title",
                    "type": "title",
                    "title": rt(title),
                },
                **(props or {}),
            },
        }

    ws = {"type": "workspace", "workspace": True}
    objects = {
        nid("wiki"): page("wiki", "Engineering wiki", ws),
        nid("oncall"): page(
            "oncall", "On-call handbook", {"type": "page_id", "page_id": nid("wiki")}
        ),
        nid("services"): {
            "object": "database",
            "id": nid("services"),
            "title": rt("Services"),
            "parent": ws,
            "last_edited_time": "2026-11-02T09:30:00.000Z",
            "url": "https://www.notion.so/services",
            "archived": False,
        },
        nid("billing"): page(
            "billing",
            "Billing service",
            {"type": "database_id", "database_id": nid("services")},
            {
                "Owner": {"type": "rich_text", "rich_text": rt("Payments team")},
                "Tier": {"type": "select", "select": {"name": "Tier 1"}},
                "Port": {"type": "number", "number": 7400},
            },
        ),
        nid("tracker"): page(
            "tracker",
            "Tracker service",
            {"type": "database_id", "database_id": nid("services")},
            {"Port": {"type": "number", "number": 7300}},
        ),
        nid("incident"): page("incident", "Security incident notes", ws),
        nid("retired"): page("retired", "Retired runbook", ws),
    }
    blocks = {
        nid("wiki"): [
            block("heading_1", "Deploys"),
            block("paragraph", "Deploys go out through the osprey pipeline every weekday."),
            block(
                "bulleted_list_item",
                "Before a deploy",
                [block("bulleted_list_item", "check the canary dashboard")],
            ),
            block("numbered_list_item", "merge the release branch"),
            block("numbered_list_item", "tag the release"),
            block("to_do", "write the changelog", checked=True),
            block("code", "osprey deploy --env prod --canary 10", language="shell"),
            block("quote", "Never deploy on a Friday afternoon."),
            block("callout", "Freeze window: 20 December to 3 January.", icon={"emoji": "⚠️"}),
            block(
                "toggle",
                "Rollback",
                [block("paragraph", "Run osprey rollback with the previous tag.")],
            ),
            block(
                "table",
                "",
                [
                    table_row("Service", "Port"),
                    table_row("billing", "7400"),
                    table_row("tracker", "7300"),
                ],
                table_width=2,
                has_column_header=True,
                has_row_header=False,
            ),
            block("child_page", "", [], title="On-call handbook"),
        ],
        nid("oncall"): [
            block(
                "paragraph", "Page the secondary after fifteen minutes without an acknowledgement."
            ),
        ],
        nid("billing"): [block("paragraph", "Billing renders invoices on the first of the month.")],
        nid("tracker"): [block("paragraph", "The tracker keeps issue history for two years.")],
        nid("incident"): [
            block("paragraph", "The leaked staging key was rotated; the new key is heron-88.")
        ],
        nid("retired"): [block("paragraph", "The pelican queue is drained with pelican-drain.")],
    }
    return objects, blocks


class MockNotion(MockService):
    def __init__(self, page_size: int = 3) -> None:
        super().__init__()
        self.objects, self.blocks = fixture()
        self.shared = set(self.objects)  # what the integration can see
        self.page_size = page_size
        self.clock = 0

    def edit(self, name: str, text: str) -> None:
        """Replace the first paragraph of a page and move its last_edited_time."""
        with self.lock:
            pid = nid(name)
            for i, b in enumerate(self.blocks[pid]):
                if b["type"] == "paragraph":
                    self.blocks[pid][i] = block("paragraph", text)
                    break
            self.clock += 1
            self.objects[pid]["last_edited_time"] = f"2026-12-01T10:{self.clock:02d}:00.000Z"

    def archive(self, name: str) -> None:
        with self.lock:
            self.objects[nid(name)].update(archived=True, in_trash=True)

    def unshare(self, name: str) -> None:
        """The page is no longer shared with the integration."""
        with self.lock:
            self.shared.discard(nid(name))

    def serve(self, call: Call) -> Reply:
        if call.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(401, "unauthorized", "API token is invalid.")
        if not call.headers.get("notion-version"):
            return _error(
                400,
                "missing_version",
                "Notion-Version header failed validation: "
                "Notion-Version header should be defined, instead was `undefined`.",
            )
        if call.method == "POST" and call.path == "/v1/search":
            return self._search(json.loads(call.body or b"{}"))
        parts = call.path.strip("/").split("/")
        if (
            call.method == "GET"
            and len(parts) == 4
            and parts[:2] == ["v1", "blocks"]
            and parts[3] == "children"
        ):
            return self._children(parts[2], call.query)
        return _error(400, "invalid_request_url", "Invalid request URL.")

    def _search(self, body: dict) -> Reply:
        found = sorted(
            (o for oid, o in self.objects.items() if oid in self.shared), key=lambda o: o["id"]
        )
        return self._paged(found, body.get("start_cursor"), body.get("page_size", 100))

    def _paged(self, results: list[dict], cursor: str | None, size: int) -> Reply:
        ids = [r["id"] for r in results]
        if cursor and cursor not in ids:
            return _error(400, "validation_error", "start_cursor is not a valid cursor.")
        start = ids.index(cursor) if cursor else 0
        size = min(int(size), self.page_size)
        chunk = results[start : start + size]
        more = start + size < len(results)
        out = [{k: v for k, v in r.items() if not k.startswith("_")} for r in chunk]
        return _json(
            {
                "object": "list",
                "results": out,
                "has_more": more,
                "next_cursor": ids[start + size] if more else None,
                "type": "page_or_database",
            }
        )

    def _children(self, block_id: str, query: dict) -> Reply:
        with self.lock:
            under = self._find(block_id)
        if under is None:
            return _error(
                404,
                "object_not_found",
                f"Could not find block with ID: {block_id}. "
                "Make sure the relevant pages and databases are shared with your integration.",
            )
        return self._paged(under, query.get("start_cursor"), int(query.get("page_size", 100)))

    def _find(self, block_id: str) -> list[dict] | None:
        plain = block_id.replace("-", "")
        for pid, blocks in self.blocks.items():
            if pid.replace("-", "") == plain:
                return blocks if pid in self.shared else None
            if pid not in self.shared:
                continue
            stack = list(blocks)
            while stack:
                b = stack.pop()
                if b["id"].replace("-", "") == plain:
                    return b["_children"]
                stack.extend(b["_children"])
        return None


def _json(body: dict) -> Reply:
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _error(status: int, code: str, message: str) -> Reply:
    body = {"object": "error", "status": status, "code": code, "message": message}
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})
