"""A loopback server playing the parts of GitHub's API the connector uses: REST repositories,
issues (`since`, `Link` pagination, pull requests among them) and comments, and the GraphQL
discussions query; with GitHub's error bodies (404, 401, primary and secondary rate limits, 429)
and a call log. Tests change its state (edit, delete, make private) between syncs."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

TOKEN = "github_pat_fixture_0123456789"


def stamp(n: int) -> str:
    """A distinct, increasing ISO time per n (minutes after a fixed start)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_750_000_000 + 60 * n))


@dataclass
class Fault:
    """The next `times` requests whose path starts with `prefix` get this answer instead."""

    prefix: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


RATE_LIMITED = {
    "message": "API rate limit exceeded for user ID 1.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}
SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
    "try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


class MockGitHub:
    def __init__(self, per_page_cap: int = 100):
        self.repos: dict[str, dict[str, Any]] = {}
        self.issues: dict[str, dict[int, dict[str, Any]]] = {}
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.discussions: dict[str, dict[int, dict[str, Any]]] = {}
        self.calls: list[str] = []
        self.faults: list[Fault] = []
        self.per_page_cap = per_page_cap
        self.clock = 0
        self.lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mock._serve(self, "GET", b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                mock._serve(self, "POST", self.rfile.read(length))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- state -------------------------------------------------------------------------
    def tick(self) -> str:
        self.clock += 1
        return stamp(self.clock)

    def add_repo(self, repo: str, visibility: str = "public", clone_url: str = "") -> None:
        self.repos[repo] = {
            "full_name": repo,
            "private": visibility != "public",
            "visibility": visibility,
            "html_url": f"https://github.com/{repo}",
            "clone_url": clone_url or f"https://github.com/{repo}.git",
        }
        self.issues.setdefault(repo, {})
        self.discussions.setdefault(repo, {})

    def add_issue(
        self,
        repo: str,
        number: int,
        title: str,
        body: str,
        user: str = "ada",
        state: str = "open",
        pull: bool = False,
        comments: tuple[tuple[str, str], ...] = (),
    ) -> None:
        when = self.tick()
        issue = {
            "number": number,
            "title": title,
            "body": body,
            "user": {"login": user},
            "state": state,
            "labels": [{"name": "bug"}] if not pull else [],
            "created_at": when,
            "updated_at": when,
            "comments": 0,
            "html_url": f"https://github.com/{repo}/{'pull' if pull else 'issues'}/{number}",
        }
        if pull:
            issue["pull_request"] = {"url": "…", "merged_at": None}
        self.issues[repo][number] = issue
        self.comments[(repo, number)] = []
        for who, text in comments:
            self.comment(repo, number, who, text)

    def comment(self, repo: str, number: int, user: str, body: str) -> None:
        when = self.tick()
        thread = self.comments[(repo, number)]
        thread.append(
            {
                "id": 1000 * number + len(thread),
                "user": {"login": user},
                "body": body,
                "created_at": when,
                "updated_at": when,
            }
        )
        self.issues[repo][number]["comments"] = len(thread)
        self.issues[repo][number]["updated_at"] = when

    def edit_issue(self, repo: str, number: int, **changes: Any) -> None:
        self.issues[repo][number].update(changes, updated_at=self.tick())

    def delete_issue(self, repo: str, number: int) -> None:
        del self.issues[repo][number]
        self.comments.pop((repo, number), None)

    def add_discussion(
        self,
        repo: str,
        number: int,
        title: str,
        body: str,
        user: str = "ada",
        comments: tuple[tuple[str, str], ...] = (),
        answer: int | None = None,
    ) -> None:
        nodes = [
            {
                "id": f"DC_{number}_{i}",
                "body": text,
                "createdAt": self.tick(),
                "author": {"login": who},
            }
            for i, (who, text) in enumerate(comments)
        ]
        self.discussions[repo][number] = {
            "number": number,
            "title": title,
            "body": body,
            "closed": False,
            "url": f"https://github.com/{repo}/discussions/{number}",
            "updatedAt": self.tick(),
            "author": {"login": user},
            "category": {"name": "Q&A"},
            "answer": {"id": nodes[answer]["id"]} if answer is not None else None,
            "comments": {"totalCount": len(nodes), "nodes": nodes},
        }

    # -- serving -----------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        with self.lock:
            self.calls.append(f"{method} {handler.path}")
            status, payload, headers = self._answer(handler, method, body)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, handler, method: str, body: bytes):
        parts = urlsplit(handler.path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        for fault in self.faults:
            if fault.times > 0 and path.startswith(fault.prefix):
                fault.times -= 1
                return fault.status, fault.body, dict(fault.headers)
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials"}, {}
        if method == "POST" and path == "/graphql":
            return 200, self._graphql(json.loads(body)), {}
        segments = path.strip("/").split("/")
        if segments[0] != "repos" or len(segments) < 3:
            return 404, NOT_FOUND, {}
        repo = "/".join(segments[1:3])
        if repo not in self.repos:
            return 404, NOT_FOUND, {}
        rest = segments[3:]
        if not rest:
            return 200, self.repos[repo], {}
        if rest == ["issues"]:
            found = sorted(self.issues[repo].values(), key=lambda i: i["updated_at"])
            if query.get("since"):
                found = [i for i in found if i["updated_at"] >= query["since"]]
            return self._page(path, query, found)
        if len(rest) == 3 and rest[0] == "issues" and rest[2] == "comments":
            number = int(rest[1])
            if number not in self.issues[repo]:
                return 404, NOT_FOUND, {}
            return self._page(path, query, self.comments[(repo, number)])
        return 404, NOT_FOUND, {}

    def _page(self, path: str, query: dict[str, str], found: list[dict[str, Any]]):
        per_page = min(int(query.get("per_page", 30)), self.per_page_cap)
        page = int(query.get("page", 1))
        chunk = found[(page - 1) * per_page : page * per_page]
        links = []
        last = max(1, -(-len(found) // per_page))
        if page < last:
            links.append(f'<{self.url}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.url}{path}?{urlencode({**query, "page": last})}>; rel="last"')
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})

    def _graphql(self, request: dict[str, Any]) -> dict[str, Any]:
        if "discussions" not in request.get("query", ""):
            return {"errors": [{"message": "unsupported query"}]}
        v = request["variables"]
        repo = f"{v['owner']}/{v['name']}"
        if repo not in self.repos:
            return {
                "data": {"repository": None},
                "errors": [
                    {
                        "type": "NOT_FOUND",
                        "message": f"Could not resolve to a Repository with the name '{repo}'.",
                    }
                ],
            }
        nodes = sorted(self.discussions[repo].values(), key=lambda d: d["updatedAt"], reverse=True)
        start = int(v["after"]) if v.get("after") else 0
        chunk = nodes[start : start + v["first"]]
        more = start + v["first"] < len(nodes)
        return {
            "data": {
                "repository": {
                    "discussions": {
                        "pageInfo": {"hasNextPage": more, "endCursor": str(start + v["first"])},
                        "nodes": chunk,
                    }
                }
            }
        }
