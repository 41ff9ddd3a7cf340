"""Jira Cloud: the issues of the configured projects (`/rest/api/3/search/jql` with
`nextPageToken`), each with its description and comments as one document (Atlassian Document
Format to Markdown), seen by the project's principal or, under a security level, only by that
level's. Same site, client and auth as Confluence.

The listing is complete every time (one call per hundred issues), so a deleted or moved issue is
pruned; the fingerprint is the issue's `updated` time with its access, which a new comment moves
too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from kbqa.ingest.connectors.base import Access, Content, ItemError, Listing, RemoteItem
from kbqa.ingest.connectors.config import SourceConfig, need_token
from kbqa.ingest.connectors.http import Http, RemoteError, RetryPolicy

LIST_FIELDS = "summary,updated,security,project,reporter"
ISSUE_FIELDS = "summary,description,comment,reporter,updated,status,issuetype,security,project"


class JiraApi:
    """Every call kbqa makes to Jira Cloud; plain data back."""

    rest = "/rest/api/3"

    def __init__(self, http: Http, page_size: int = 100):
        self.http, self.page_size = http, page_size

    def search(self, jql: str) -> Iterator[dict]:
        """Every issue matching `jql` (the listing's fields only), page by page."""
        params: dict[str, Any] = {"jql": jql, "fields": LIST_FIELDS, "maxResults": self.page_size}
        while True:
            page = self.http.get_json("/rest/api/3/search/jql", params)
            yield from page.get("issues", [])
            token = page.get("nextPageToken")
            if not token or page.get("isLast", False):
                return
            params = {**params, "nextPageToken": token}

    def issue(self, key: str) -> dict:
        issue = self.http.get_json(f"{self.rest}/issue/{key}", {"fields": ISSUE_FIELDS})
        comments = (issue.get("fields") or {}).get("comment") or {}
        found = list(comments.get("comments", []))
        # The issue carries the first page of its comments; the rest are fetched by offset.
        while len(found) < int(comments.get("total", 0)):
            more = self.http.get_json(
                f"{self.rest}/issue/{key}/comment",
                {"startAt": len(found), "maxResults": self.page_size},
            )
            if not more.get("comments"):
                break
            found += more["comments"]
        issue.setdefault("fields", {})["comments"] = found
        return issue


class DataCenterJiraApi(JiraApi):
    """Jira Data Center / Server: REST v2, `search` paged by `startAt`, bodies in wiki markup
    (kept as they are)."""

    rest = "/rest/api/2"

    def search(self, jql: str) -> Iterator[dict]:
        start = 0
        while True:
            params = {"jql": jql, "fields": LIST_FIELDS, "startAt": start}
            page = self.http.get_json(
                "/rest/api/2/search", {**params, "maxResults": self.page_size}
            )
            issues = page.get("issues", [])
            yield from issues
            start += len(issues)
            if not issues or start >= int(page.get("total", 0)):
                return


class JiraConnector:
    kind = "jira"

    def __init__(self, name: str, api: JiraApi, projects: tuple[str, ...], options: dict):
        self.name, self.api, self.projects = name, api, projects
        self.public = set(options.get("public_projects", ()))
        self.jql = str(options.get("jql", ""))
        self.site = api.http.base_url

    def _query(self) -> str:
        parts = []
        if self.projects:
            parts.append("project in (" + ", ".join(f'"{p}"' for p in self.projects) + ")")
        if self.jql:
            parts.append(f"({self.jql})")
        return " AND ".join(parts) + " ORDER BY key ASC"

    def list(self, cursor: str | None) -> Listing:
        listing = Listing(items=[], complete=True)
        try:
            for issue in self.api.search(self._query()):
                listing.items.append(self._item(issue))
        except RemoteError as exc:
            if not listing.items:
                raise  # nothing listed at all: the sync fails, saying why
            # Part of the issues are unknown: none of those already stored may be pruned.
            listing.problems.append((f"search {self._query()}", str(exc)))
            listing.complete = False
        return listing

    def _item(self, issue: dict) -> RemoteItem:
        fields = issue.get("fields") or {}
        key = issue["key"]
        access = self.access(fields)
        digest = hashlib.sha1(json.dumps(access.as_dict(), sort_keys=True).encode()).hexdigest()
        reporter = fields.get("reporter") or {}
        return RemoteItem(
            id=key,
            version=f"{fields.get('updated', '')}:{digest[:12]}",
            title=f"{key}: {fields.get('summary', '')}",
            url=f"{self.site}/browse/{key}",
            updated_at=_iso(fields.get("updated", "")),
            author=reporter.get("displayName") or reporter.get("accountId", ""),
            access=access,
        )

    def access(self, fields: dict) -> Access:
        """The project's readers, or only the security level's when the issue has one."""
        project = (fields.get("project") or {}).get("key", "")
        security = fields.get("security")
        if security:
            level = security.get("name") or security.get("id", "")
            return Access(groups=(f"jira-security:{project}:{level}",))
        if not project:
            return Access()
        if project in self.public:
            return Access(public=True)
        return Access(groups=(f"jira-project:{project}",))

    def fetch(self, item: RemoteItem) -> Content:
        try:
            issue = self.api.issue(item.id)
        except RemoteError as exc:
            raise ItemError(str(exc)) from exc
        fields = issue.get("fields") or {}
        status = (fields.get("status") or {}).get("name", "")
        kind = (fields.get("issuetype") or {}).get("name", "")
        lines = [f"# {item.title}", ""]
        facts = " · ".join(x for x in (kind, status, f"reported by {item.author}") if x)
        lines += [facts, "", adf_to_markdown(fields.get("description")).strip(), ""]
        comments = fields.get("comments") or []
        if comments:
            lines += ["## Comments", ""]
        for c in comments:
            who = (c.get("author") or {}).get("displayName", "someone")
            lines += [f"### {who}, {str(c.get('created', ''))[:10]}", ""]
            lines += [adf_to_markdown(c.get("body")).strip(), ""]
        return Content(markdown="\n".join(lines))


def _iso(stamp: str) -> str:
    """Jira's "2026-11-30T10:00:00.000+0000" as ISO 8601 with a colon in the offset."""
    if len(stamp) > 5 and stamp[-5] in "+-" and stamp[-3] != ":":
        return f"{stamp[:-2]}:{stamp[-2:]}"
    return stamp


def adf_to_markdown(node: Any) -> str:
    """Atlassian Document Format (a description's or a comment's JSON) as Markdown; a plain
    string (Jira's v2 API, or old data) is returned as it is."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    return _adf(node, 0).strip() + "\n"


def _children(node: dict, depth: int, sep: str = "") -> str:
    return sep.join(_adf(child, depth) for child in node.get("content") or [])


def _adf(node: dict, depth: int) -> str:
    kind = node.get("type", "")
    attrs = node.get("attrs") or {}
    if kind == "text":
        text = node.get("text", "")
        marks = {m.get("type") for m in node.get("marks") or []}
        if "code" in marks:
            text = f"`{text}`"
        if "strong" in marks:
            text = f"**{text}**"
        if "em" in marks:
            text = f"*{text}*"
        for m in node.get("marks") or []:
            if m.get("type") == "link" and (m.get("attrs") or {}).get("href"):
                text = f"[{text}]({m['attrs']['href']})"
        return text
    if kind in ("doc",):
        return _children(node, depth, "\n\n")
    if kind == "paragraph":
        return _children(node, depth)
    if kind == "heading":
        return f"{'#' * min(int(attrs.get('level', 2)) + 2, 6)} {_children(node, depth)}"
    if kind == "hardBreak":
        return "\n"
    if kind in ("mention", "emoji"):
        return str(attrs.get("text") or attrs.get("shortName", ""))
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return str(attrs.get("url", ""))
    if kind == "codeBlock":
        return f"```{attrs.get('language', '')}\n{_children(node, depth)}\n```"
    if kind in ("bulletList", "orderedList"):
        lines = []
        for n, item in enumerate(node.get("content") or [], 1):
            marker = f"{n}." if kind == "orderedList" else "-"
            parts = [_adf(c, depth + 1) for c in item.get("content") or []]
            head, rest = (parts[0], parts[1:]) if parts else ("", [])
            lines.append(f"{'  ' * depth}{marker} {head.strip()}")
            lines += [p.rstrip() for p in rest if p.strip()]
        return "\n".join(lines)
    if kind in ("blockquote", "panel"):
        inner = _children(node, depth, "\n\n")
        return "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
    if kind == "table":
        rows = [
            [" ".join(_children(cell, depth, " ").split()) for cell in row.get("content") or []]
            for row in node.get("content") or []
        ]
        if not rows:
            return ""
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        out = [f"| {' | '.join(rows[0])} |", f"|{' --- |' * width}"]
        return "\n".join(out + [f"| {' | '.join(r)} |" for r in rows[1:]])
    if kind == "rule":
        return "---"
    if kind in ("media", "mediaSingle", "mediaGroup"):
        return ""
    return _children(node, depth, "\n\n" if kind in ("expand", "nestedExpand") else "")


def build(config: SourceConfig, retry: RetryPolicy | None = None) -> JiraConnector:
    """A Jira connector: `url` the site (https://acme.atlassian.net), `scope` the project keys,
    `user_env` the account's email (Cloud basic auth; unset: a Data Center token as Bearer);
    options `jql` (an extra filter), `public_projects` (readable by anyone) and `deployment =
    "datacenter"` (REST v2)."""
    token = need_token(config)
    auth = (config.user, token) if config.user else None
    headers = {} if auth else {"Authorization": f"Bearer {token}"}
    http = Http(config.url, headers=headers, auth=auth, retry=retry)
    kind = DataCenterJiraApi if config.options.get("deployment") == "datacenter" else JiraApi
    api = kind(http, int(config.options.get("page_size", 100)))
    return JiraConnector(config.name, api, config.scope, dict(config.options))
