"""Any git repository (a local path or an http(s) URL; a wiki is `<repo>.wiki.git`): its docs
at the branch head, read from a bare mirror under KBQA_HOME that each sync fetches into.

The listing is complete: every doc at the head, its fingerprint the blob sha and who may open
it, so an unchanged file costs nothing; it names the paths that the tree diff since the cursor
(the last synced commit) deleted. Each item's time, author and permalink are those of the last
commit that changed it."""

from __future__ import annotations

import logging
import re
import tempfile
import weakref
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from kbqa.errors import ConfigError
from kbqa.ingest.connectors import git_repo
from kbqa.ingest.connectors.base import (
    Access,
    Content,
    ItemError,
    Listing,
    RemoteItem,
    titled,
)
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.partition import HEADING_SEPARATOR

log = logging.getLogger(__name__)

DEFAULT_INCLUDE = ("**/*.md", "**/*.markdown", "**/*.rst", "**/*.txt", "**/*.html", "**/*.htm")
# Text files that are not documentation, and trees that hold other projects' files.
DEFAULT_EXCLUDE = (
    "**/.*/**",
    "**/node_modules/**",
    "**/vendor/**",
    "**/third_party/**",
    "**/requirements*.txt",
    "**/CMakeLists.txt",
    "**/LICENSE*",
    "**/COPYING*",
)
MARKDOWN_SUFFIXES = (".md", ".markdown", ".txt", ".text")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")


def _strings(config: SourceConfig, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = config.options.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"source '{config.name}': '{key}' must be a list of globs")
    return tuple(value)


def access_of(config: SourceConfig, principal: str) -> Access:
    """`access = "public"` opens the source to every audience; anything else keeps it to
    audiences granted `principal` (unset means restricted: fail closed)."""
    value = config.options.get("access", "restricted")
    if value not in ("public", "restricted"):
        raise ConfigError(
            f"source '{config.name}': 'access' must be \"public\" or \"restricted\", not {value!r}"
        )
    return Access(public=True) if value == "public" else Access(groups=(principal,))


class Permalinks:
    """Links to a file at a commit, with a line range where one is known: GitHub-style
    `/blob/<sha>/<path>#L1-L9` (GitLab `/-/blob/…#L1-9`), a GitHub wiki page's revision, a
    `file://` path for a local repository, or the `permalink` option's template."""

    def __init__(self, url: str, template: str = ""):
        self.template = template
        if git_repo.is_local(url):
            local = Path(url[len("file://") :] if url.startswith("file://") else url)
            self.base, self.style = local.resolve().as_uri(), "file"
            return
        parts = urlsplit(git_repo.redact_url(url))
        path = parts.path.rstrip("/")
        self.style = "github"
        if path.endswith(".wiki.git"):
            path, self.style = path[: -len(".wiki.git")], "wiki"
        elif path.endswith(".git"):
            path = path[: -len(".git")]
        if "gitlab" in parts.netloc and self.style == "github":
            self.style = "gitlab"
        self.base = f"{parts.scheme}://{parts.netloc}{path}"

    def __call__(self, sha: str, path: str, start: int = 0, end: int = 0) -> str:
        quoted = quote(path)
        if self.template:
            return self.template.format(base=self.base, sha=sha, path=quoted, start=start, end=end)
        if self.style == "file":
            return f"{self.base}/{quoted}" + (f"#L{start}-L{end}" if start else "")
        if self.style == "wiki":
            return f"{self.base}/wiki/{quote(PurePosixPath(path).stem)}/{sha}"
        if self.style == "gitlab":
            return f"{self.base}/-/blob/{sha}/{quoted}" + (f"#L{start}-{end}" if start else "")
        return f"{self.base}/blob/{sha}/{quoted}" + (f"#L{start}-L{end}" if start else "")


def markdown_sections(text: str) -> list[tuple[str, int, int]]:
    """(heading path, first line, last line) of each ATX-headed section of a Markdown text,
    lines counted from 1; fenced code is not searched for headings."""
    sections: list[tuple[str, int, int]] = []
    stack: list[tuple[int, str]] = []
    in_fence, start, heading = False, 0, ""
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _ATX.match(line)
        if match:
            if start:
                sections.append((heading, start, number - 1))
            level = len(match.group(1))
            stack = [(lvl, title) for lvl, title in stack if lvl < level] + [
                (level, match.group(2))
            ]
            heading = HEADING_SEPARATOR.join(title for _, title in stack)
            start = number
    if start:
        sections.append((heading, start, len(lines)))
    return sections


class GitConnector:
    kind = "git"

    def __init__(self, config: SourceConfig, cache: Path, principal: str = ""):
        self.name = config.name
        self.url = config.url
        self.cache = cache
        self.branch = str(config.options.get("branch", ""))
        self.include = git_repo.glob_regex(_strings(config, "include", DEFAULT_INCLUDE))
        self.exclude = git_repo.glob_regex(_strings(config, "exclude", DEFAULT_EXCLUDE))
        self.prefixes = tuple(s.strip("/") for s in config.scope)
        self.access = access_of(config, principal or f"git-repo:{config.name}")
        self.max_bytes = int(config.options.get("max_file_bytes", 32 * 1024 * 1024))
        self.permalink = Permalinks(config.url, str(config.options.get("permalink", "")))
        self.username = config.user or ("x-access-token" if config.token else "")
        self.password = config.token
        self._repo: Any = None

    @property
    def repo(self):
        if self._repo is None:
            self._repo = git_repo.open_mirror(self.cache / "repo.git")
            # The mirror's pack files are closed when the connector goes, or at exit before
            # the interpreter tears down the modules dulwich's finalisers need.
            self._closer = weakref.finalize(self, self._repo.close)
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._closer()
            self._repo = None

    def _wanted(self, path: str) -> bool:
        return not self.prefixes or any(
            path == p or path.startswith(p + "/") for p in self.prefixes
        )

    def head(self) -> str:
        """Fetch the branch into the mirror; its head commit."""
        return git_repo.fetch(self.repo, self.url, self.branch, self.username, self.password)

    def list(self, cursor: str | None) -> Listing:
        head = self.head()
        blobs = {
            path: sha
            for path, sha in git_repo.list_blobs(
                self.repo, head, self.include, self.exclude
            ).items()
            if self._wanted(path)
        }
        removed: list[str] = []
        if git_repo.has_commit(self.repo, cursor) and cursor != head:
            added, modified, deleted = git_repo.changed_paths(self.repo, cursor, head)
            removed = sorted(p for p in deleted if p not in blobs)
            log.info(
                "%s: %d added, %d changed, %d deleted since %s",
                self.name,
                len(added & blobs.keys()),
                len(modified & blobs.keys()),
                len(removed),
                cursor[:10],
            )
        commits = git_repo.last_commits(self.repo, head, set(blobs), self.cache / "history.json")
        items = [self._item(path, sha, commits[path]) for path, sha in sorted(blobs.items())]
        return Listing(items=items, complete=True, removed=removed, cursor=head)

    def _item(self, path: str, blob: str, last: git_repo.LastCommit) -> RemoteItem:
        # Who may open it is part of the version: a source made restricted re-stamps its items.
        mark = "public" if self.access.public else ",".join(self.access.groups)
        return RemoteItem(
            id=path,
            version=f"{blob}#{mark}",
            title=path,
            url=self.permalink(last.sha, path),
            updated_at=last.time,
            author=last.author,
            access=self.access,
            extra={"commit": last.sha, "blob": blob},
        )

    def sections(self, item: RemoteItem, text: str) -> list[dict[str, Any]]:
        """Each Markdown section's heading path, line range and permalink to those lines."""
        commit = item.extra.get("commit", "")
        return [
            {"heading": h, "start": a, "end": b, "url": self.permalink(commit, item.id, a, b)}
            for h, a, b in markdown_sections(text)
        ]

    def section_urls(self, item: RemoteItem, text: str) -> dict[str, str]:
        """{heading path as the chunks carry it: permalink to the section's lines}."""
        # A file without a title is parsed under the item's title (base.titled): its chunks'
        # heading paths begin with it, while the lines stay those of the file itself.
        prefix = "" if titled(text, item.title) == text else item.title + HEADING_SEPARATOR
        return {prefix + s["heading"]: s["url"] for s in self.sections(item, text)}

    def fetch(self, item: RemoteItem) -> Content:
        try:
            blob = item.extra["blob"]
            data = git_repo.read_blob(self.repo, blob)
        except KeyError:
            raise ItemError(f"{item.id}: its blob is not in the mirror") from None
        if len(data) > self.max_bytes:
            raise ItemError(f"{item.id}: {len(data)} bytes, over max_file_bytes")
        suffix = PurePosixPath(item.id).suffix.lower()
        if suffix in MARKDOWN_SUFFIXES:
            text = data.decode("utf-8", "replace")
            return Content(markdown=text, metadata={"section_urls": self.section_urls(item, text)})
        with tempfile.NamedTemporaryFile(prefix="kbqa-git-", suffix=suffix, delete=False) as f:
            f.write(data)
        return Content(file=Path(f.name), filename=PurePosixPath(item.id).name)


def cache_dir(config: SourceConfig) -> Path:
    """Where a source's mirror lives: `options.cache_dir`, else the knowledge base's
    KBQA_HOME/connectors/<name>."""
    if config.options.get("cache_dir"):
        return Path(str(config.options["cache_dir"]))
    if config.home is None:  # never the environment's home: it may be another knowledge base's
        raise ConfigError(f"source '{config.name}': no KBQA_HOME to keep its mirror under")
    return config.home / "connectors" / config.name


def build(config: SourceConfig) -> GitConnector:
    """The git connector for one `[[sources]]` entry of kind "git"."""
    return GitConnector(config, cache_dir(config))
