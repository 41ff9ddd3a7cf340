"""GitHub repositories: issues and pull requests with their comments (REST, `since`), and
discussions with their accepted answer (GraphQL), one document each; with `docs = true` (and
`wiki = true`) the repository's docs (and wiki) through the git connector.

Cursor: per repository, the newest `updated_at` seen; the next sync asks for what changed since
then less `overlap_seconds` (300), so an edit made while a sync ran is not missed, and an item
seen twice costs only a fingerprint comparison (version = updated_at + comment count).

Deletions: GitHub rarely deletes issues and its `since` listing never says so, so a sync lists
every issue and discussion ID (and prunes what is gone) on the first sync, every
`full_every`-th sync (12 by default), every sync with `full = true`, and whenever a repository's
visibility changed (its access is re-stamped on every item). A repository that answers 404 (gone,
or this token lost access to it) has nothing listed, so its items leave the answers."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from kbqa.errors import ConfigError, KbqaError
from kbqa.ingest.connectors.base import Access, Content, ItemError, Listing, RemoteItem
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.git import GitConnector, cache_dir
from kbqa.ingest.connectors.github_api import GitHubApi
from kbqa.ingest.connectors.http import Http, RemoteError

log = logging.getLogger(__name__)

API = "https://api.github.com"


def repositories(config: SourceConfig) -> tuple[str, tuple[str, ...]]:
    """(REST base URL, "owner/repo" names) from `url` (the API, github.com, or one repository's
    page) and `scope`."""
    url = config.url.rstrip("/")
    repos = list(config.scope)
    for web in ("https://github.com", "http://github.com"):
        if url == web or url.startswith(web + "/"):
            rest = url[len(web) :].strip("/").removesuffix(".git")
            if rest:
                repos.append(rest)
            url = API
    if not repos or any(r.count("/") != 1 for r in repos):
        raise ConfigError(
            f"source '{config.name}': 'scope' must name repositories as \"owner/repo\""
        )
    return url, tuple(dict.fromkeys(repos))


def _shifted(stamp: str, seconds: int) -> str:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _login(node: dict[str, Any] | None) -> str:
    return (node or {}).get("login") or "ghost"


class GitHubConnector:
    kind = "github"

    def __init__(self, config: SourceConfig, api: GitHubApi):
        self.name = config.name
        self.config = config
        self.api = api
        _, self.repos = repositories(config)
        options = config.options
        self.full = bool(options.get("full", False))
        self.full_every = int(options.get("full_every", 12))
        self.overlap = int(options.get("overlap_seconds", 300))
        # GitHub's GraphQL API answers no one without a token.
        self.discussions = bool(options.get("discussions", bool(config.token)))
        self.docs = bool(options.get("docs", False))
        self.wiki = bool(options.get("wiki", False))
        self.forced_access = options.get("access", "")
        if self.forced_access not in ("", "public", "restricted"):
            raise ConfigError(
                f"source '{config.name}': 'access' must be \"public\" or \"restricted\""
            )
        self._git: dict[str, GitConnector] = {}

    def access(self, repo: str, info: dict[str, Any]) -> Access:
        """A public repository's items are public, any other visibility's are for audiences
        granted `github-repo:owner/repo`; `access = "public"` or `"restricted"` overrides."""
        public = info.get("visibility", "private" if info.get("private", True) else "public")
        if self.forced_access == "public" or (public == "public" and not self.forced_access):
            return Access(public=True)
        return Access(groups=(f"github-repo:{repo}",))

    def list(self, cursor: str | None) -> Listing:
        state = json.loads(cursor) if cursor else {}
        syncs = int(state.get("syncs", 0)) + 1
        repos_state: dict[str, dict[str, Any]] = state.get("repos", {})
        infos = {repo: self.api.repository(repo) for repo in self.repos}
        complete = (
            not cursor
            or self.full
            or (self.full_every > 0 and syncs % self.full_every == 0)
            or any(
                (info or {}).get("visibility") != repos_state.get(repo, {}).get("visibility")
                for repo, info in infos.items()
            )
        )
        listing = Listing(items=[], complete=complete)
        new_state: dict[str, dict[str, Any]] = {}
        for repo, info in infos.items():
            old = repos_state.get(repo, {})
            if info is None:
                listing.problems.append((repo, "not found, or this token may not read it"))
                new_state[repo] = {"visibility": None}
                continue
            since = "" if complete or not old.get("since") else _shifted(old["since"], self.overlap)
            new_state[repo] = self._list_repo(repo, info, since, old, listing)
        listing.cursor = json.dumps({"syncs": syncs, "repos": new_state}, sort_keys=True)
        return listing

    def _list_repo(
        self, repo: str, info: dict[str, Any], since: str, old: dict[str, Any], listing: Listing
    ) -> dict[str, Any]:
        access = self.access(repo, info)
        newest = old.get("since", "")
        # The access is part of the version: a repository going private re-stamps every item.
        mark = "public" if access.public else "restricted"
        for issue in self.api.issues(repo, since):
            kind = "pull" if issue.get("pull_request") else "issue"
            listing.items.append(
                RemoteItem(
                    id=f"{repo}/issues/{issue['number']}",
                    version=f"{issue['updated_at']}#{issue.get('comments', 0)}#{mark}",
                    title=f"{repo}#{issue['number']}: {issue['title']}",
                    url=issue["html_url"],
                    updated_at=issue["updated_at"],
                    author=_login(issue.get("user")),
                    access=access,
                    extra={"repo": repo, "kind": kind, "issue": issue},
                )
            )
            newest = max(newest, issue["updated_at"])
        if self.discussions:
            try:
                for node in self.api.discussions(repo, since):
                    listing.items.append(self._discussion(repo, node, access, mark))
                    newest = max(newest, node["updatedAt"])
            except RemoteError as exc:
                listing.problems.append((f"{repo} discussions", exc.reason))
                # A fault may pass: prune nothing. A refusal (the token lost the Discussions
                # permission) is an answer: the discussions go from the answers.
                if exc.status == 0 or exc.status >= 500:
                    listing.complete = False
        state: dict[str, Any] = {"since": newest, "visibility": info.get("visibility")}
        for part, wanted in (("docs", self.docs), ("wiki", self.wiki)):
            if wanted:
                state[part] = self._list_git(repo, part, info, access, old.get(part), listing)
        return state

    def _discussion(self, repo: str, node: dict[str, Any], access: Access, mark: str):
        count = node["comments"]["totalCount"]
        return RemoteItem(
            id=f"{repo}/discussions/{node['number']}",
            version=f"{node['updatedAt']}#{count}#{mark}",
            title=f"{repo} discussion #{node['number']}: {node['title']}",
            url=node["url"],
            updated_at=node["updatedAt"],
            author=_login(node.get("author")),
            access=access,
            extra={"repo": repo, "kind": "discussion", "discussion": node},
        )

    def git(self, repo: str, part: str, info: dict[str, Any]) -> GitConnector:
        """The git connector for a repository's docs (or its wiki), cloned with the token."""
        key = f"{repo}/{part}"
        if key not in self._git:
            url = info.get("clone_url") or f"{info['html_url']}.git"
            if part == "wiki":
                url = url.removesuffix(".git") + ".wiki.git"
            options = {k: v for k, v in self.config.options.items() if k in ("include", "exclude")}
            config = replace(self.config, kind="git", url=url, scope=(), options=options)
            root = cache_dir(self.config) / repo.replace("/", "+") / part
            self._git[key] = GitConnector(config, root)
        return self._git[key]

    def _list_git(self, repo, part, info, access, cursor, listing: Listing) -> str | None:
        git = self.git(repo, part, info)
        git.access = access
        try:
            found = git.list(cursor)
        except KbqaError as exc:  # a repository without a wiki must not stop its issues
            listing.problems.append((f"{repo} {part}", str(exc)))
            # What was synced before stays until it can be listed again.
            listing.complete = listing.complete and cursor is None
            return cursor
        prefix = f"{repo}/{part}/"
        for item in found.items:
            listing.items.append(
                replace(
                    item,
                    id=prefix + item.id,
                    title=f"{repo}: {item.title}",
                    extra={**item.extra, "repo": repo, "kind": part, "path": item.id},
                )
            )
        listing.removed.extend(prefix + path for path in found.removed)
        return found.cursor

    def fetch(self, item: RemoteItem) -> Content:
        kind, repo = item.extra.get("kind"), item.extra.get("repo", "")
        if kind in ("docs", "wiki"):
            git = self._git.get(f"{repo}/{kind}")
            if git is None:
                raise ItemError(f"{item.id}: its repository was not listed in this sync")
            path = item.extra["path"]
            return git.fetch(replace(item, id=path))
        if kind == "discussion":
            return Content(markdown=discussion_markdown(item.extra["discussion"]))
        issue = item.extra["issue"]
        try:
            comments = self.api.comments(repo, issue["number"]) if issue.get("comments") else []
        except RemoteError as exc:
            raise ItemError(f"{item.id}: {exc.reason}") from None
        return Content(markdown=issue_markdown(issue, comments))

    def close(self) -> None:
        for git in self._git.values():
            git.close()
        self.api.http.close()


def _post(who: str, body: str | None, note: str = "") -> str:
    text = (body or "").strip() or "(no text)"
    return f"**{who}**{note}: {text}"


def issue_markdown(issue: dict[str, Any], comments: list[dict[str, Any]]) -> str:
    """An issue or pull request as one thread: its state and labels, the opening post, then
    each comment in order."""
    kind = "Pull request" if issue.get("pull_request") else "Issue"
    state = issue.get("state", "open")
    if (issue.get("pull_request") or {}).get("merged_at"):
        state = "merged"
    labels = ", ".join(label.get("name", "") for label in issue.get("labels") or [])
    head = f"{kind} #{issue['number']} ({state}" + (f"; labels: {labels}" if labels else "") + ")"
    posts = [_post(_login(issue.get("user")), issue.get("body"), " opened it")]
    posts += [_post(_login(c.get("user")), c.get("body")) for c in comments]
    return f"# {issue['title']}\n\n{head}\n\n" + "\n\n---\n\n".join(posts) + "\n"


def discussion_markdown(node: dict[str, Any]) -> str:
    """A discussion as one thread: the question, then the comments in order, the accepted
    answer marked (a Q&A thread, like a resolved Slack thread)."""
    answer = (node.get("answer") or {}).get("id")
    category = (node.get("category") or {}).get("name", "")
    state = "answered" if answer else ("closed" if node.get("closed") else "open")
    head = f"Discussion #{node['number']} ({state}" + (f"; {category}" if category else "") + ")"
    posts = [_post(_login(node.get("author")), node.get("body"), " asked")]
    for comment in node["comments"]["nodes"]:
        note = " (accepted answer)" if comment.get("id") == answer else ""
        posts.append(_post(_login(comment.get("author")), comment.get("body"), note))
    return f"# {node['title']}\n\n{head}\n\n" + "\n\n---\n\n".join(posts) + "\n"


def build(config: SourceConfig, http: Http | None = None) -> GitHubConnector:
    """The GitHub connector for one `[[sources]]` entry of kind "github" (a fine-grained token
    with read access to Contents, Issues, Pull requests and Discussions, in `token_env`)."""
    base, _ = repositories(config)
    if http is None:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        http = Http(base, headers=headers)
    return GitHubConnector(config, GitHubApi(http))
