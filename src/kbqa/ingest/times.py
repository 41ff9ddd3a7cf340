"""When a file's content last changed, and who changed it: the `updated:` line of its front
matter, else its last git commit (where the file is committed unchanged in a git work tree),
else its modification time. A clone gives every file the time of the clone, so the mtime is
the last resort, not the first."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from kbqa.clock import iso, parse_time
from kbqa.ingest.markdown_blocks import split_front_matter

log = logging.getLogger(__name__)

# Commits read at most per repository: a deep history is not walked to date one old file.
MAX_COMMITS = 20000
_UPDATED = re.compile(r"^(?:updated|last[_-]updated|last[_-]reviewed)\s*:\s*(\S.*)$", re.I | re.M)
_AUTHOR = re.compile(r"^(?:author|owner)\s*:\s*(\S.*)$", re.I | re.M)


def front_matter(head: bytes) -> dict[str, str]:
    """`updated_at` (ISO) and `author` from a Markdown file's front matter, where it has them."""
    try:
        front, _ = split_front_matter(head.decode("utf-8"))
    except UnicodeDecodeError:
        return {}
    out = {}
    updated = _UPDATED.search(front)
    if updated and (stamp := parse_time(updated.group(1))):
        out["updated_at"] = iso(stamp)
    author = _AUTHOR.search(front)
    if author:
        out["author"] = author.group(1).strip().strip("'\"")
    return out


class GitTimes:
    """The last commit of each committed file under one folder of a git work tree (dulwich,
    no git binary needed): the history is walked once, newest first, until every file the
    folder's HEAD holds is dated (or MAX_COMMITS were read), and the repository is closed.
    A commit whose folder is the same tree as its first parent's changed nothing there and is
    not diffed: one tree read per commit, not a diff of the folder's path from the root."""

    def __init__(self, start: Path):
        from dulwich.diff_tree import tree_changes
        from dulwich.objects import Tree
        from dulwich.repo import Repo  # the connectors extra; without it, times are mtimes

        repo = Repo.discover(str(start))
        try:
            self.root = Path(repo.path).resolve()
            prefix = start.resolve().relative_to(self.root).as_posix().encode()
            prefix = b"" if prefix == b"." else prefix
            store = repo.object_store
            folder = _Folder(store, prefix)
            top = folder.tree(store[repo.head()].tree)
            # path -> the blob HEAD holds there: what the file must still be to take its date
            self._blobs = (
                {
                    (prefix + b"/" + e.path if prefix else e.path): e.sha
                    for e in store.iter_tree_contents(top)
                }
                if top is not None and isinstance(store[top], Tree)
                else {}
            )
            self._dated: dict[bytes, tuple[float, str]] = {}
            wanted = set(self._blobs)
            for entry in repo.get_walker(max_entries=MAX_COMMITS):
                if not wanted:
                    break
                commit = entry.commit
                first = commit.parents[0] if commit.parents else None
                parent = folder.tree(store[first].tree) if first is not None else None
                new = folder.tree(commit.tree)
                if new == parent:
                    continue  # nothing under the folder changed here
                author = commit.author.decode("utf-8", "replace").split(" <")[0]
                for change in tree_changes(store, parent, new):
                    path = change.new.path if change.new is not None else None
                    path = prefix + b"/" + path if prefix and path is not None else path
                    if path in wanted:
                        wanted.discard(path)
                        self._dated[path] = (float(commit.commit_time), author)
        finally:
            repo.close()

    @classmethod
    def open(cls, start: Path) -> GitTimes | None:
        """The dates of the work tree holding `start`, or None (no repository, no commit, no
        dulwich)."""
        try:
            return cls(start if start.is_dir() else start.parent)
        except ImportError:
            return None
        except Exception as exc:  # not a repository, an empty one, a broken one: use mtimes
            log.debug("no git times for %s: %s", start, exc)
            return None

    def last_change(self, path: Path, data: bytes) -> tuple[float, str] | None:
        """(commit time, author) of the last commit that changed `path`, when `data` (the file
        as it is now) is what HEAD holds; None for an uncommitted or edited file."""
        from dulwich.objects import Blob

        try:
            rel = path.resolve().relative_to(self.root).as_posix().encode()
        except ValueError:
            return None
        if self._blobs.get(rel) != Blob.from_string(data).id:
            return None  # not committed, or edited since: the mtime is nearer the truth
        return self._dated.get(rel)


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


class _Folder:
    """The tree id of one folder (`prefix`, b"" for the root) in commits' root trees; each tree
    on the way is read once however many commits share it."""

    def __init__(self, store, prefix: bytes):
        self.store, self.parts = store, [p for p in prefix.split(b"/") if p]
        self._child: dict[tuple[bytes, bytes], bytes | None] = {}

    def tree(self, root: bytes) -> bytes | None:
        """The folder's tree id under the root tree `root`; None where it is missing."""
        sha: bytes | None = root
        for part in self.parts:
            key = (sha, part)
            if key not in self._child:
                try:
                    mode, child = self.store[sha][part]
                except KeyError:
                    mode, child = 0, None
                # a file where the folder should be is no folder
                self._child[key] = child if mode & 0o040000 else None
            sha = self._child[key]
            if sha is None:
                return None
        return sha
