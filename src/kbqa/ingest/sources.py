"""Sources: where documents come from (a folder of files, a Slack export, a Slack sync).

A source lists items cheaply (a fingerprint each) so the ingest pipeline can skip unchanged ones
before paying for parsing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kbqa.errors import KbqaError, ParseError
from kbqa.ingest.files import FileLimits, check_size, content_hash, discover_all, parse_file
from kbqa.ingest.times import GitTimes, file_time
from kbqa.types import Document

# (path, content hash, timings) -> Document; ParseError when the file is skipped.
Parser = Callable[[Path, str, dict[str, float]], Document]


@dataclass
class Item:
    """One document-to-be: its uri, a fingerprint, and how to load it (may raise ParseError)."""

    uri: str
    name: str
    fingerprint: Callable[[], str]
    load: Callable[[str, dict[str, float]], Document]


@dataclass
class Source:
    root: str  # the identity of the source in the database
    kind: str
    items: list[Item]
    # When True, documents this source ingested before and no longer lists are removed.
    complete: bool = True
    problems: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    # Uris known deleted (a connector's changes log): removed even when `complete` is False.
    removed: list[str] = field(default_factory=list)
    # A connector's new cursor, stored by the caller once the items are (None keeps the old).
    cursor: str | None = None


def file_source(
    root: Path,
    max_chars: int,
    soft_max_chars: int,
    limits: FileLimits | None = None,
    parser: Parser | None = None,
) -> Source:
    """Every supported file under root (or root itself), parsed by `parser` (a ParseWorker's
    `parse`; in this process by default)."""
    if not root.exists():
        raise KbqaError(f"{root}: no such file or directory")
    limits = limits or FileLimits()
    files, unsupported, broken = discover_all(root)

    def in_process(path: Path, digest: str, timings: dict[str, float]) -> Document:
        return parse_file(path, max_chars, soft_max_chars, digest, timings, limits)

    parse = parser or in_process
    # Opened at the first load (a listing alone needs no git), once: parse threads load at once.
    git: list[GitTimes | None] = []
    git_lock = threading.Lock()

    def item(path: Path) -> Item:
        def fingerprint() -> str:
            check_size(path, limits)  # a huge file is not even read
            return content_hash(path, max_chars, soft_max_chars)

        def load(digest: str, timings: dict[str, float]) -> Document:
            doc = parse(path, digest, timings)
            with git_lock:
                if not git:
                    git.append(GitTimes.open(root))
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ParseError(f"cannot read: {exc.strerror or exc}") from exc
            return replace(
                doc, metadata={**doc.metadata, **file_time(path, data, doc.mtime, git[0])}
            )

        return Item(str(path.resolve()), str(path), fingerprint, load)

    return Source(
        str(root.resolve()),
        "files",
        [item(p) for p in files],
        problems=broken,
        unsupported=[str(p) for p in unsupported],
    )


def documents_source(root: str, kind: str, documents: list[Document], complete: bool) -> Source:
    """Documents already built (Slack threads): their content hash is the fingerprint."""

    def item(doc: Document) -> Item:
        return Item(doc.uri, doc.title, lambda: doc.content_hash, lambda _digest, _t: doc)

    return Source(root, kind, [item(d) for d in documents], complete=complete)


def open_source(
    path: Path,
    settings_workspace: str,
    include_bots: bool,
    max_chars: int,
    soft_max_chars: int,
    limits: FileLimits | None = None,
    parser: Parser | None = None,
) -> Source:
    """A Slack export (zip or folder with channels.json) or a tree of files. An export that
    cannot be read is a source with that one problem, and none of its documents is removed."""
    from kbqa.ingest.slack_export import is_slack_export, read_export

    limits = limits or FileLimits()
    if path.exists() and is_slack_export(path):
        if not settings_workspace:
            raise KbqaError(
                "set slack_workspace (YOUR-TEAM in https://YOUR-TEAM.slack.com) to ingest a "
                "Slack export, e.g. KBQA_SLACK_WORKSPACE=your-team"
            )
        root = str(path.resolve())
        try:
            documents, problems = read_export(
                path, settings_workspace, include_bots, limits.max_file_bytes
            )
        except ParseError as exc:
            source = documents_source(root, "slack-export", [], complete=False)
            source.problems = [(str(path), str(exc))]
            return source
        source = documents_source(root, "slack-export", documents, complete=True)
        # Named within the export, so two exports' "general/2024-01-02.json" stay apart.
        source.problems = [(f"{path}/{name}", why) for name, why in problems]
        return source
    return file_source(path, max_chars, soft_max_chars, limits, parser)
