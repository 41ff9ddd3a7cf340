"""The shape every API connector takes: a listing of items with the service's own version as
fingerprint, content fetched only for the items that changed, and who may open each one."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kbqa.errors import KbqaError, ParseError
from kbqa.ingest.files import parse_file
from kbqa.ingest.markdown_blocks import split_front_matter
from kbqa.ingest.sources import Item, Parser, Source
from kbqa.types import Document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Access:
    """Who may open an item at its source. Access() (nothing known) = restricted: only
    unrestricted audiences (the local CLI, an admin token) see it — fail closed."""

    public: bool = False
    # principals, "<kind>:<scope>" e.g. "confluence-space:ENG", "jira-project:OPS",
    # "github-repo:acme/api", "gdrive-group:eng@acme.com", "notion-workspace:acme"
    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()  # "<kind>-user:<id or email>"

    def as_dict(self) -> dict[str, Any]:
        return {"public": self.public, "groups": list(self.groups), "users": list(self.users)}


@dataclass(frozen=True)
class RemoteItem:
    id: str  # stable at the service (page id, issue key, path in the repo, file id)
    version: str  # the service's own version: the fingerprint (no content fetched)
    title: str
    url: str  # link back: the page, the issue, a permalink to commit + lines
    updated_at: str  # ISO 8601 UTC, the item's own last edit
    author: str = ""
    access: Access = Access()
    extra: Mapping[str, Any] = field(default_factory=dict)  # connector-private


@dataclass
class Listing:
    items: list[RemoteItem]  # what exists (complete=True) or what changed (False)
    complete: bool = True  # True: every existing item is listed -> the rest is pruned
    removed: list[str] = field(default_factory=list)  # ids known deleted (a changes log)
    cursor: str | None = None  # stored only after the items are stored; None keeps the old
    problems: list[tuple[str, str]] = field(default_factory=list)  # (item or url, reason)


@dataclass(frozen=True)
class Content:
    """What an item holds: Markdown text (headings kept; the pipeline chunks it), or a file
    (an attachment, a Drive PDF) that the file parsers read; `sections` may carry extra
    documents of one item (an issue's comments as one text is fine)."""

    markdown: str = ""
    file: Path | None = None  # a temporary file the caller deletes after parsing
    filename: str = ""  # its name, for typing by extension
    # Merged into the document's metadata, e.g. git's `section_urls` {heading path: link}.
    metadata: Mapping[str, Any] = field(default_factory=dict)


class ItemError(KbqaError):
    """This one item failed (its reason is the message); the sync goes on."""


class Connector(Protocol):
    kind: str  # "confluence", "jira", "git", "github", "web", "gdrive", "notion"
    name: str  # the [[sources]] entry's name

    def list(self, cursor: str | None) -> Listing: ...

    def fetch(self, item: RemoteItem) -> Content: ...  # may raise ItemError


def item_uri(kind: str, name: str, item_id: str) -> str:
    """The uri a connector's item is stored under: `{kind}:{name}/{id}`."""
    return f"{kind}:{name}/{item_id}"


def source_root(kind: str, name: str) -> str:
    """The identity of a connector's source in the database."""
    return f"{kind}:{name}"


def connector_source(
    connector: Connector,
    cursor: str | None,
    parser: Parser | None = None,
    max_chars: int = 1200,
    soft_max_chars: int = 800,
    listing: Listing | None = None,
) -> Source:
    """The connector's listing as an ingest Source (fingerprint = the item's version; content
    fetched and parsed only when the pipeline loads an item). `Source.cursor` is the listing's
    cursor, for the caller to store once the source's items are stored. A listing that is not
    complete prunes nothing; `removed` ids are pruned through `Source.removed`."""
    if listing is None:
        listing = connector.list(cursor)

    def in_process(path: Path, digest: str, timings: dict[str, float]) -> Document:
        return parse_file(path, max_chars, soft_max_chars, digest, timings)

    parse = parser or in_process
    root = source_root(connector.kind, connector.name)

    def item(remote: RemoteItem) -> Item:
        def load(digest: str, timings: dict[str, float]) -> Document:
            return load_item(connector, remote, digest, timings, parse)

        return Item(
            item_uri(connector.kind, connector.name, remote.id),
            f"{connector.name}: {remote.title}",
            lambda: remote.version,
            load,
        )

    source = Source(
        root,
        connector.kind,
        [item(r) for r in listing.items],
        complete=listing.complete,
        problems=list(listing.problems),
    )
    source.removed = [item_uri(connector.kind, connector.name, i) for i in listing.removed]
    source.cursor = listing.cursor
    if not listing.complete:
        log.info("%s: the listing is not complete; nothing is pruned", root)
    return source


def load_item(
    connector: Connector,
    remote: RemoteItem,
    digest: str,
    timings: dict[str, float],
    parse: Parser,
) -> Document:
    """Fetch one item and parse it into a Document under its connector uri; an ItemError or
    ParseError names why it is skipped."""
    try:
        content = connector.fetch(remote)
    except ItemError as exc:
        raise ParseError(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="kbqa-item-") as tmp:
        if content.file is not None:
            suffix = Path(content.filename or content.file.name).suffix
            path = Path(tmp) / f"item{suffix}"
            try:
                content.file.replace(path)
            except OSError:  # another filesystem: copy it instead
                path.write_bytes(content.file.read_bytes())
                content.file.unlink(missing_ok=True)
        else:
            if not content.markdown.strip():
                raise ParseError("no text found")
            text = titled(content.markdown, remote.title)
            path = Path(tmp) / "item.md"
            path.write_text(text, encoding="utf-8")
        document = parse(path, digest, timings)
    return remote_document(connector, remote, document, digest, content.metadata)


def titled(markdown: str, title: str) -> str:
    """The Markdown as parsed: headed by the item's title unless it begins with a title.
    Front matter stays first, where the parser knows it for front matter and leaves it out."""
    _, body = split_front_matter(markdown)
    if body.lstrip().startswith("# "):
        return markdown
    return f"{markdown[: len(markdown) - len(body)]}# {title}\n\n{body}"


def remote_document(
    connector: Connector,
    remote: RemoteItem,
    document: Document,
    digest: str,
    extra: Mapping[str, Any] | None = None,
) -> Document:
    """`document` (parsed from a temporary file) under the item's uri, title and metadata
    (the connector's `extra` first, so that it never overrides the link or the access)."""
    metadata = {**document.metadata, **(extra or {})}
    metadata.update(
        source=connector.kind,
        connector=connector.name,
        url=remote.url,
        updated_at=remote.updated_at,
        author=remote.author,
        access=remote.access.as_dict(),
    )
    return dataclasses.replace(
        document,
        uri=item_uri(connector.kind, connector.name, remote.id),
        title=remote.title or document.title,
        content_hash=digest,
        mtime=iso_seconds(remote.updated_at) or document.mtime,
        metadata=metadata,
    )


def iso_seconds(stamp: str) -> float:
    """Seconds since the epoch of an ISO 8601 time ("Z" or an offset; naive is UTC); 0 if
    it cannot be read."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
