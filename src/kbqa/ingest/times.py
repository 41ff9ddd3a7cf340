"""When a file's content last changed, and who changed it: the `updated:` line of its front
matter, else its last git commit (where the file is committed unchanged in a git work tree),
else its modification time. A clone gives every file the time of the clone, so the mtime is
the last resort, not the first."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kbqa.clock import iso, parse_time

log = logging.getLogger(__name__)

# Commits read at most per repository: a deep history is not walked to date one old file.
MAX_COMMITS = 20000
_FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_UPDATED = re.compile(r"^(?:updated|last[_-]updated|last[_-]reviewed)\s*:\s*(\S.*)$", re.I | re.M)
_AUTHOR = re.compile(r"^(?:author|owner)\s*:\s*(\S.*)$", re.I | re.M)


def front_matter(head: bytes) -> dict[str, str]:
    """`updated_at` (ISO) and `author` from a Markdown file's front matter, where it has them."""
    try:
        match = _FRONT_MATTER.match(head.decode("utf-8"))
    except UnicodeDecodeError:
        return {}
    if not match:
        return {}
    out = {}
    updated = _UPDATED.search(match.group(1))
    if updated and (stamp := parse_time(updated.group(1))):
        out["updated_at"] = iso(stamp)
    author = _AUTHOR.search(match.group(1))
    if author:
        out["author"] = author.group(1).strip().strip("'\"")
    return out


class GitTimes:
    """The last commit of each file of one git work tree (dulwich, no git binary needed),
    found by walking the history once, newest first, only as far as the files asked about."""

    def __init__(self, start: Path):
        from dulwich.repo import Repo  # the connectors extra; without it, times are mtimes

        self.repo = Repo.discover(str(start))
        self.root = Path(self.repo.path).resolve()
        head = self.repo[self.repo.head()]
        self._head_tree = head.tree
        self._found: dict[bytes, tuple[float, str]] = {}
        self._walk: Iterator[Any] | None = iter(self.repo.get_walker(max_entries=MAX_COMMITS))

    @classmethod
    def open(cls, start: Path) -> GitTimes | None:
        """The work tree holding `start`, or None (no repository, no commit, no dulwich)."""
        try:
            return cls(start if start.is_dir() else start.parent)
        except ImportError:
            return None
        except Exception as exc:  # not a repository, an empty one, a broken one: use mtimes
            log.debug("no git times for %s: %s", start, exc)
            return None

    def last_change(self, path: Path, data: bytes) -> tuple[float, str] | None:
        """(commit time, author) of the last commit that changed `path`, when `data` (the file
        as it is now) is what that commit holds; None for an uncommitted or edited file."""
        from dulwich.objects import Blob

        try:
            rel = path.resolve().relative_to(self.root).as_posix().encode()
            _mode, blob = self.repo.object_store[self._head_tree].lookup_path(
                self.repo.object_store.__getitem__, rel
            )
        except (ValueError, KeyError):
            return None  # outside the work tree, or not committed
        if blob != Blob.from_string(data).id:
            return None  # edited since its last commit: the mtime is nearer the truth
        while rel not in self._found and self._walk is not None:
            self._step()
        return self._found.get(rel)

    def _step(self) -> None:
        from dulwich.diff_tree import tree_changes

        entry = next(self._walk, None)
        if entry is None:
            self._walk = None
            return
        commit = entry.commit
        store = self.repo.object_store
        parent = store[commit.parents[0]].tree if commit.parents else None
        author = commit.author.decode("utf-8", "replace").split(" <")[0]
        for change in tree_changes(store, parent, commit.tree):
            if change.new.path is not None:
                self._found.setdefault(change.new.path, (float(commit.commit_time), author))


def file_time(path: Path, data: bytes, mtime: float, git: GitTimes | None) -> dict[str, str]:
    """`updated_at`, `author` and `time_source` for a file: its front matter, its last git
    commit, or its mtime (with no author), in that order."""
    own = front_matter(data[:4096]) if path.suffix.lower() in (".md", ".markdown") else {}
    if "updated_at" in own:
        return {**own, "time_source": "front-matter"}
    change = git.last_change(path, data) if git is not None else None
    if change is not None:
        return {"updated_at": iso(change[0]), "author": change[1], "time_source": "git"}
    return {**own, "updated_at": iso(mtime), "time_source": "mtime"}
