"""Every call the GitHub connector makes: REST for a repository, its issues (pull requests
included) and their comments, GraphQL for its discussions. Plain dicts back; the `Http` under it
retries rate limits (`X-RateLimit-Remaining: 0` + `X-RateLimit-Reset`, secondary 403 and 429
with `Retry-After`) and 5xx."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kbqa.ingest.connectors.http import Http, RemoteError, rate_limit_wait

log = logging.getLogger(__name__)

DISCUSSIONS_QUERY = """
query($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    discussions(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number title body url updatedAt closed
        author { login }
        category { name }
        answer { id }
        comments(first: 100) {
          totalCount
          nodes { id body createdAt author { login } }
        }
      }
    }
  }
}
"""


class GitHubApi:
    """One repository's issues, comments and discussions through an `Http` on the REST base
    (https://api.github.com, or https://HOST/api/v3 on GitHub Enterprise)."""

    def __init__(self, http: Http, per_page: int = 100, graphql_url: str = ""):
        self.http = http
        self.per_page = per_page
        base = http.base_url
        self.graphql_url = graphql_url or (
            base[: -len("/v3")] + "/graphql" if base.endswith("/api/v3") else base + "/graphql"
        )

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Each page of a REST list, following the `Link: <…>; rel="next"` header."""
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            response = self.http.request("GET", url, params=query)
            page = response.json()
            if not isinstance(page, list):
                raise RemoteError(self.http.url(path), response.status_code, "not a list")
            yield page
            url, query = response.links.get("next", {}).get("url"), None

    def repository(self, repo: str) -> dict[str, Any] | None:
        """The repository (visibility, clone_url, html_url), or None when it is gone or this
        token may no longer see it (GitHub answers 404 for both)."""
        try:
            return self.http.get_json(f"/repos/{repo}")
        except RemoteError as exc:
            if exc.status in (404, 451):
                return None
            raise

    def issues(self, repo: str, since: str = "") -> Iterator[dict[str, Any]]:
        """Issues and pull requests updated at or after `since` (all of them when empty),
        oldest update first."""
        params: dict[str, Any] = {
            "state": "all",
            "sort": "updated",
            "direction": "asc",
            "per_page": self.per_page,
        }
        if since:
            params["since"] = since
        for page in self._pages(f"/repos/{repo}/issues", params):
            yield from page

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """An issue's (or pull request's conversation) comments, oldest first."""
        path = f"/repos/{repo}/issues/{number}/comments"
        return [c for page in self._pages(path, {"per_page": self.per_page}) for c in page]

    def discussions(self, repo: str, since: str = "") -> Iterator[dict[str, Any]]:
        """Discussions updated at or after `since` (all when empty), newest update first, each
        with its first 100 comments and which one is the accepted answer."""
        owner, name = repo.split("/", 1)
        after = None
        while True:
            variables = {"owner": owner, "name": name, "first": 50, "after": after}
            body = self._graphql({"query": DISCUSSIONS_QUERY, "variables": variables})
            repository = (body.get("data") or {}).get("repository")
            if repository is None:
                return
            found = repository["discussions"]
            for node in found["nodes"]:
                if since and node["updatedAt"] < since:
                    return
                yield node
            if not found["pageInfo"]["hasNextPage"]:
                return
            after = found["pageInfo"]["endCursor"]

    def _graphql(self, request: dict[str, Any]) -> dict[str, Any]:
        """A GraphQL answer's body. GitHub reports its GraphQL rate limit as HTTP 200 with an
        error of type RATE_LIMITED: waited out like the REST limits. A refusal (FORBIDDEN,
        NOT_FOUND, INSUFFICIENT_SCOPES) is a RemoteError with status 403; other errors 0."""
        http = self.http
        delay = http.retry.backoff
        for attempt in range(1, http.retry.attempts + 1):
            response = http.request("POST", self.graphql_url, json=request)
            try:
                body = response.json()
            except ValueError:
                raise RemoteError(self.graphql_url, response.status_code, "not JSON") from None
            errors = body.get("errors") if isinstance(body, dict) else None
            if not errors:
                return body
            kinds = {str(e.get("type", "")) for e in errors if isinstance(e, dict)}
            message = str(errors[0].get("message", "error"))[:200]
            if "RATE_LIMITED" in kinds and attempt < http.retry.attempts:
                wait = rate_limit_wait(response.headers)
                wait = min(delay if wait is None else wait, http.retry.max_wait)
                log.info("%s: GraphQL rate limited; retrying in %.1f s", self.graphql_url, wait)
                http.waited += wait
                http.sleep(wait)
                delay = min(delay * 2, http.retry.max_backoff)
                continue
            refused = kinds & {"FORBIDDEN", "NOT_FOUND", "INSUFFICIENT_SCOPES"}
            raise RemoteError(self.graphql_url, 403 if refused else 0, f"GraphQL: {message}")
        raise AssertionError("unreachable")
