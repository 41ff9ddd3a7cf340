"""A git repository through dulwich (no git binary): a bare mirror kept up to date by fetch, the
docs in a commit's tree, the exact changes between two commits, and each path's last commit.

Every call works on the local mirror except `fetch`, so a sync of an unchanged repository costs
one ref advertisement."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kbqa.errors import KbqaError

log = logging.getLogger(__name__)

# The ref the mirror keeps the fetched head under: under refs/heads, so that dulwich tells the
# remote what it already has and a fetch brings only the new objects.
MIRROR_REF = b"refs/heads/kbqa-mirror"


@dataclass(frozen=True)
class LastCommit:
    """The newest commit that changed a path: its sha, time (ISO 8601 UTC) and author's name."""

    sha: str
    time: str
    author: str


def redact_url(url: str) -> str:
    """The URL without any user or password in it (for messages and logs)."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def open_mirror(cache: Path):
    """The bare mirror under `cache`, created empty the first time."""
    from dulwich.repo import Repo

    if (cache / "HEAD").exists():
        return Repo(str(cache))
    cache.mkdir(parents=True, exist_ok=True)
    return Repo.init_bare(str(cache))


def fetch(repo, url: str, branch: str = "", username: str = "", password: str = "") -> str:
    """Bring the remote's `branch` (its HEAD when empty) into the mirror; the head commit's sha."""
    from dulwich.client import get_transport_and_path

    location = url[len("file://") :] if url.startswith("file://") else url
    if is_local(url) and not Path(location).exists():
        raise KbqaError(f"git: {location}: no such repository")
    auth = {"username": username or None, "password": password or None} if password else {}
    wanted_ref = b"refs/heads/" + branch.encode() if branch else b"HEAD"
    found: dict[str, bytes] = {}

    def determine_wants(refs, depth=None):
        sha = refs.get(wanted_ref)
        if sha is None:
            return []
        found["head"] = sha
        return [] if sha in repo.object_store else [sha]

    try:
        client, path = get_transport_and_path(location, quiet=True, **auth)
        client.fetch(path, repo, determine_wants=determine_wants)
    except KbqaError:
        raise
    except Exception as exc:  # dulwich raises many kinds: network, protocol, HTTP status
        reason = redact_url(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if password:
            reason = reason.replace(password, "***")
        raise KbqaError(f"git: {redact_url(url)}: fetch failed: {reason}") from None
    if "head" not in found:
        what = f"branch {branch!r}" if branch else "HEAD (an empty repository?)"
        raise KbqaError(f"git: {redact_url(url)}: no {what}")
    repo.refs[MIRROR_REF] = found["head"]
    return found["head"].decode()


def glob_regex(patterns: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    """One regex for gitignore-like globs: `**` any directories, `*` and `?` within a name."""

    def one(glob: str) -> str:
        out, i = [], 0
        while i < len(glob):
            if glob.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            elif glob.startswith("**", i):
                out.append(".*")
                i += 2
            elif glob[i] == "*":
                out.append("[^/]*")
                i += 1
            elif glob[i] == "?":
                out.append("[^/]")
                i += 1
            else:
                out.append(re.escape(glob[i]))
                i += 1
        return "".join(out)

    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{one(p)})" for p in patterns) + r"\Z")


def list_blobs(repo, commit: str, include: re.Pattern[str], exclude: re.Pattern[str]):
    """{path: blob sha} of the files in the commit's tree that `include` matches and `exclude`
    does not (submodules and symlinks skipped)."""
    import stat

    from dulwich.object_store import iter_tree_contents

    tree = repo[commit.encode()].tree
    out: dict[str, str] = {}
    for entry in iter_tree_contents(repo.object_store, tree):
        if not stat.S_ISREG(entry.mode):
            continue
        path = entry.path.decode("utf-8", "replace")
        if include.match(path) and not exclude.match(path):
            out[path] = entry.sha.decode()
    return out


def has_commit(repo, sha: str | None) -> bool:
    if not sha or not re.fullmatch(r"[0-9a-f]{40}", sha):
        return False
    return sha.encode() in repo.object_store


def changed_paths(repo, old: str, new: str) -> tuple[set[str], set[str], set[str]]:
    """(added, modified, deleted) paths between two commits' trees (renames as delete + add)."""
    from dulwich.diff_tree import CHANGE_ADD, CHANGE_DELETE, tree_changes

    added: set[str] = set()
    modified: set[str] = set()
    deleted: set[str] = set()
    old_tree, new_tree = repo[old.encode()].tree, repo[new.encode()].tree
    for change in tree_changes(repo.object_store, old_tree, new_tree):
        if change.type == CHANGE_ADD:
            added.add(change.new.path.decode("utf-8", "replace"))
        elif change.type == CHANGE_DELETE:
            deleted.add(change.old.path.decode("utf-8", "replace"))
        else:
            modified.add(change.new.path.decode("utf-8", "replace"))
    return added, modified, deleted


def _touched(repo, commit) -> set[str] | None:
    """Paths this commit changed against every parent (a merge that took a file from one side
    did not touch it); None for a root commit (it touched everything in its tree)."""
    from dulwich.diff_tree import tree_changes

    if not commit.parents:
        return None
    common: set[str] | None = None
    for parent in commit.parents:
        paths = set()
        for change in tree_changes(repo.object_store, repo[parent].tree, commit.tree):
            for side in (change.old, change.new):
                if side is not None and side.path is not None:
                    paths.add(side.path.decode("utf-8", "replace"))
        common = paths if common is None else common & paths
    return common or set()


def _last_commit(commit) -> LastCommit:
    when = datetime.fromtimestamp(commit.commit_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    author = commit.author.decode("utf-8", "replace").split(" <", 1)[0].strip()
    return LastCommit(commit.id.decode(), when, author)


def _walk(repo, head: str, pending: set[str], exclude: str | None, found: dict[str, LastCommit]):
    from dulwich.walk import Walker

    walker = Walker(
        repo.object_store, [head.encode()], exclude=[exclude.encode()] if exclude else None
    )
    for entry in walker:
        if not pending:
            return
        touched = _touched(repo, entry.commit)
        hits = set(pending) if touched is None else pending & touched
        for path in hits:
            found[path] = _last_commit(entry.commit)
        pending -= hits


def last_commits(repo, head: str, paths: set[str], memo: Path) -> dict[str, LastCommit]:
    """The newest commit that changed each path at `head`. The history is walked once: a memo
    file keeps the answer for a head, and the next head walks only the commits since then for
    the paths that changed."""
    try:
        saved = json.loads(memo.read_text())
        base, known = saved["head"], {p: LastCommit(*v) for p, v in saved["paths"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        base, known = None, {}
    if base == head and paths <= known.keys():
        return {p: known[p] for p in paths}
    found: dict[str, LastCommit] = {}
    pending = set(paths)
    if has_commit(repo, base):
        added, modified, _ = changed_paths(repo, base, head)
        stale = added | modified
        for path in paths - stale:
            if path in known:
                found[path] = known[path]
                pending.discard(path)
        # A path changed since `base` was changed by a commit that `base` cannot reach.
        _walk(repo, head, pending, base, found)
    if pending:
        _walk(repo, head, pending, None, found)
    for path in pending:  # unreachable in a sane repository; keep the head as its commit
        found[path] = _last_commit(repo[head.encode()])
    tmp = memo.with_suffix(".tmp")
    rows = {path: list(dataclasses.astuple(last)) for path, last in found.items()}
    tmp.write_text(json.dumps({"head": head, "paths": rows}))
    os.replace(tmp, memo)
    return found


def read_blob(repo, sha: str) -> bytes:
    return repo[sha.encode()].data
