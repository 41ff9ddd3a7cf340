"""Jira Cloud on 127.0.0.1, as its REST API v3 documents it: `search/jql` with `nextPageToken`
and `isLast` (short pages, an expired token answered 400), an issue with the first page of its
comments and `comment` paged by `startAt`, Jira's `errorMessages` bodies; faults per path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .mockserver import MockServer, Reply, page_of


def adf(*paragraphs: str) -> dict:
    """Plain paragraphs as an Atlassian Document Format document."""
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs
        ],
    }


def _plain(doc: dict) -> str:
    """An ADF document's text, as Data Center's wiki markup would carry it."""
    return "\n\n".join(t["text"] for p in doc["content"] for t in p.get("content", []))


@dataclass
class MockIssue:
    project: str
    summary: str
    description: dict
    comments: list[tuple[str, str]] = field(default_factory=list)  # (author, text)
    updated: str = "2026-11-01T09:00:00.000+0000"
    reporter: str = "Grace Hopper"
    security: str | None = None  # a security level's name
    status: str = "Done"


class MockJira(MockServer):
    """State: `issues` (key -> MockIssue). `expire_tokens` answers the next use of a
    nextPageToken with Jira's 400 for an expired token."""

    def __init__(self, max_page: int = 2, comment_page: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_page, self.comment_page = max_page, comment_page
        self.issues: dict[str, MockIssue] = {}
        self.expire_tokens = 0
        self.route("GET", r"/rest/api/3/search/jql", self._search)
        self.route("GET", r"/rest/api/[23]/issue/([A-Z]+-\d+)", self._issue)
        self.route("GET", r"/rest/api/[23]/issue/([A-Z]+-\d+)/comment", self._comments)
        self.route("GET", r"/rest/api/2/search", self._search_v2)
        self.v2 = False  # Data Center: bodies in wiki markup (plain strings), not ADF

    def comment(self, key: str, author: str, text: str) -> None:
        issue = self.issues[key]
        issue.comments.append((author, text))
        issue.updated = f"2026-12-0{len(issue.comments) % 9 + 1}T10:00:00.000+0000"

    def _fields(self, key: str, issue: MockIssue, wanted: set[str]) -> dict:
        fields = {
            "summary": issue.summary,
            "updated": issue.updated,
            "project": {"key": issue.project, "id": str(10000 + len(issue.project))},
            "reporter": {"displayName": issue.reporter, "accountId": "5b10"},
            "security": {"id": "10100", "name": issue.security} if issue.security else None,
            "status": {"name": issue.status},
            "issuetype": {"name": "Task"},
            "description": _plain(issue.description) if self.v2 else issue.description,
        }
        return {k: v for k, v in fields.items() if k in wanted}

    def _search(self, params) -> Reply:
        jql = params.get("jql", "")
        projects = re.findall(r'"([A-Z]+)"', jql.split("ORDER BY")[0])
        if not re.search(r"ORDER BY key ASC$", jql):
            return Reply(400, {"errorMessages": [f"Error in the JQL Query: {jql}"], "errors": {}})
        if params.get("nextPageToken") and self.expire_tokens:
            self.expire_tokens -= 1
            return Reply(
                400,
                {"errorMessages": ["The provided next page token is invalid or expired."]},
            )
        keys = sorted(
            (k for k, i in self.issues.items() if not projects or i.project in projects),
            key=lambda k: (k.split("-")[0], int(k.split("-")[1])),
        )
        wanted = set(params.get("fields", "").split(","))
        rows = [
            {
                "id": str(abs(hash(k)) % 100000),
                "key": k,
                "fields": self._fields(k, self.issues[k], wanted),
            }
            for k in keys
        ]
        chunk, cursor = page_of(
            rows, {**params, "cursor": params.get("nextPageToken", "")}, self.max_page
        )
        body = {"issues": chunk, "isLast": cursor is None}
        if cursor is not None:
            body["nextPageToken"] = cursor
        return Reply(body=body)

    def _search_v2(self, params) -> Reply:
        jql = params.get("jql", "")
        projects = re.findall(r'"([A-Z]+)"', jql.split("ORDER BY")[0])
        keys = sorted(
            (k for k, i in self.issues.items() if not projects or i.project in projects),
            key=lambda k: (k.split("-")[0], int(k.split("-")[1])),
        )
        start = int(params.get("startAt", 0))
        size = min(int(params.get("maxResults", 50)), self.max_page)
        wanted = set(params.get("fields", "").split(","))
        rows = [
            {"id": "1", "key": k, "fields": self._fields(k, self.issues[k], wanted)}
            for k in keys[start : start + size]
        ]
        return Reply(
            body={"startAt": start, "maxResults": size, "total": len(keys), "issues": rows}
        )

    def _comment_json(self, i: int, author: str, text: str) -> dict:
        return {
            "id": str(20000 + i),
            "author": {"displayName": author},
            "body": text if self.v2 else adf(text),
            "created": f"2026-11-{i % 28 + 1:02d}T12:00:00.000+0000",
        }

    def _issue(self, key, params) -> Reply:
        issue = self.issues.get(key)
        if issue is None:
            return Reply(
                404,
                {
                    "errorMessages": [
                        "Issue does not exist or you do not have permission to see it."
                    ],
                    "errors": {},
                },
            )
        wanted = set(params.get("fields", "").split(","))
        fields = self._fields(key, issue, wanted)
        if "comment" in wanted:
            fields["comment"] = {
                "comments": [
                    self._comment_json(i, a, t)
                    for i, (a, t) in enumerate(issue.comments[: self.comment_page])
                ],
                "maxResults": self.comment_page,
                "total": len(issue.comments),
                "startAt": 0,
            }
        return Reply(body={"id": "1", "key": key, "fields": fields})

    def _comments(self, key, params) -> Reply:
        issue = self.issues.get(key)
        if issue is None:
            return Reply(404, {"errorMessages": ["Issue does not exist"], "errors": {}})
        start = int(params.get("startAt", 0))
        size = min(int(params.get("maxResults", 50)), self.comment_page)
        shown = issue.comments[start : start + size]
        return Reply(
            body={
                "comments": [self._comment_json(start + i, a, t) for i, (a, t) in enumerate(shown)],
                "startAt": start,
                "maxResults": size,
                "total": len(issue.comments),
            }
        )
