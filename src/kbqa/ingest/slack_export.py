"""A standard Slack workspace export, zipped or unzipped, read into thread Documents."""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbqa.errors import ParseError
from kbqa.ingest.slack import Conversation, build_documents
from kbqa.types import Document

_DAY_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.json")
# Slack cuts a message's text at 40,000 characters; a longer one did not come from Slack.
MAX_MESSAGE_CHARS = 40_000


@dataclass
class _Export:
    """The export's files by path relative to its root, from a zip or a folder alike, with
    the size each declares (a zip member's declared size bounds what reading it inflates)."""

    files: dict[str, Callable[[], bytes]]
    sizes: dict[str, int]
    max_file_bytes: int | None = None

    def folders(self) -> set[str]:
        return {name.split("/", 1)[0] for name in self.files if "/" in name}

    def day_files(self, folder: str) -> list[str]:
        prefix = f"{folder}/"
        return sorted(
            name
            for name in self.files
            if name.startswith(prefix) and _DAY_FILE.fullmatch(name[len(prefix) :])
        )

    def json(self, name: str) -> Any:
        """The parsed file; ValueError (JSONDecodeError, UnicodeDecodeError, too large, too
        deeply nested) when it is not usable JSON."""
        size = self.sizes.get(name, 0)
        if self.max_file_bytes is not None and size > self.max_file_bytes:
            raise _Unusable(
                f"{size / 2**20:.1f} MB, more than max_file_bytes "
                f"({self.max_file_bytes / 2**20:g} MB)"
            )
        try:
            data = self.files[name]()
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError) as exc:
            # A damaged member (bad CRC, bad deflate data), or an encrypted one.
            raise _Unusable(f"cannot read: {str(exc)[:120]}") from None
        except NotImplementedError as exc:
            raise _Unusable(f"cannot read: {exc}") from None
        try:
            return json.loads(data.decode("utf-8-sig"))
        except RecursionError:
            raise _Unusable("malformed JSON: nested too deeply") from None


class _Unusable(ValueError):
    """A file of the export that cannot be used, with the reason as its message."""


def is_slack_export(path: Path) -> bool:
    """A .zip or folder containing channels.json (zip: at its root or one level down)."""
    try:
        if path.is_dir():
            return _folder_root(path) is not None
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _zip_prefix(archive.namelist()) is not None
    except (OSError, zipfile.BadZipFile):
        return False
    return False


def read_export(
    path: Path, workspace: str, include_bots: bool = False, max_file_bytes: int | None = None
) -> tuple[list[Document], list[tuple[str, str]]]:
    """All thread documents of the export, and (file, reason) problems found on the way; a
    file of the export larger than max_file_bytes is one of those problems."""
    with _open(path) as export:
        export.max_file_bytes = max_file_bytes
        return _read(export, workspace, include_bots)


@contextmanager
def _open(path: Path) -> Iterator[_Export]:
    if path.is_dir():
        root = _folder_root(path)
        if root is None:
            raise ParseError("not a Slack export: channels.json is missing")
        paths = {
            p.relative_to(root).as_posix(): p
            for pattern in ("*.json", "*/*.json")
            for p in root.glob(pattern)
            if p.is_file()
        }
        yield _Export(
            {name: p.read_bytes for name, p in paths.items()},
            {name: p.stat().st_size for name, p in paths.items()},
        )
        return
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ParseError(f"not a Slack export: cannot open as a zip file ({exc})") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.filename.endswith("/")]
        prefix = _zip_prefix([i.filename for i in infos])
        if prefix is None:
            raise ParseError("not a Slack export: channels.json is missing")
        mine = [i for i in infos if i.filename.startswith(prefix)]
        yield _Export(
            {i.filename[len(prefix) :]: (lambda name=i.filename: archive.read(name)) for i in mine},
            {i.filename[len(prefix) :]: i.file_size for i in mine},
        )


def _folder_root(path: Path) -> Path | None:
    if (path / "channels.json").is_file():
        return path
    return next(
        (d for d in sorted(path.iterdir()) if d.is_dir() and (d / "channels.json").is_file()),
        None,
    )


def _zip_prefix(names: list[str]) -> str | None:
    if "channels.json" in names:
        return ""
    nested = sorted(
        n
        for n in names
        if n.count("/") == 1 and n.endswith("/channels.json") and not n.startswith("__MACOSX/")
    )
    return nested[0].removesuffix("channels.json") if nested else None


def _read(
    export: _Export, workspace: str, include_bots: bool
) -> tuple[list[Document], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    if "channels.json" not in export.files:
        raise ParseError("not a Slack export: channels.json is missing")
    try:
        public = export.json("channels.json")
    except ValueError as exc:
        raise ParseError(f"channels.json: {_malformed(exc)}") from exc
    if not isinstance(public, list):
        raise ParseError("channels.json: not a list of channels")
    users = _users(_listing(export, "users.json", problems, required=True))

    # (conversation, folder names it may have: channels by name, DMs by id, as exports do)
    conversations: list[tuple[Conversation, list[str]]] = []
    for entry in _entries(public):
        conversations.append((Conversation(entry["id"], entry["name"], False), _names(entry)))
    for entry in _entries(_listing(export, "groups.json", problems)):
        conversations.append((Conversation(entry["id"], entry["name"], True), _names(entry)))
    for entry in _entries(_listing(export, "mpims.json", problems)):
        conversations.append((Conversation(entry["id"], entry["name"], True), _names(entry)))
    for entry in _entries(_listing(export, "dms.json", problems), named=False):
        members = ", ".join(users.get(m, m) for m in entry.get("members") or [])
        name = f"dm-{members or entry['id']}"
        conversations.append((Conversation(entry["id"], name, True), [entry["id"], name]))
    names = {c.id: c.name for c, _ in conversations}

    documents: list[Document] = []
    folders = export.folders()
    for conversation, candidates in conversations:
        folder = next((f for f in candidates if f in folders), None)
        if folder is None:
            continue  # listed but never written to
        messages: list[dict] = []
        for day in export.day_files(folder):
            try:
                data = export.json(day)
            except ValueError as exc:
                problems.append((day, _malformed(exc)))
                continue
            except (OSError, zipfile.BadZipFile) as exc:
                problems.append((day, f"cannot read: {exc}"))
                continue
            if not isinstance(data, list):
                problems.append((day, "not a list of messages"))
                continue
            for message in data:
                if not isinstance(message, dict):
                    continue
                length = len(str(message.get("text") or ""))
                if length > MAX_MESSAGE_CHARS:
                    problems.append(
                        (
                            day,
                            f"a message of {length:,} characters (Slack allows "
                            f"{MAX_MESSAGE_CHARS:,}) left out",
                        )
                    )
                    continue
                messages.append(message)
        found, warnings = build_documents(
            conversation, messages, users, names, workspace, include_bots
        )
        documents.extend(found)
        problems.extend((folder, warning) for warning in warnings)
    return documents, problems


def _listing(
    export: _Export, name: str, problems: list[tuple[str, str]], required: bool = False
) -> list:
    if name not in export.files:
        if required:
            problems.append((name, "missing: authors are shown by user id"))
        return []
    try:
        data = export.json(name)
    except ValueError as exc:
        problems.append((name, _malformed(exc)))
        return []
    if not isinstance(data, list):
        problems.append((name, "not a list"))
        return []
    return data


def _entries(data: Any, named: bool = True) -> list[dict]:
    """Listing entries with the fields a conversation needs; others are left out."""
    if not isinstance(data, list):
        return []
    return [
        e
        for e in data
        if isinstance(e, dict)
        and isinstance(e.get("id"), str)
        and (not named or isinstance(e.get("name"), str))
    ]


def _names(entry: dict) -> list[str]:
    return [entry["name"], entry["id"]]


def _users(data: list) -> dict[str, str]:
    users = {}
    for user in data:
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            continue
        profile = user.get("profile") or {}
        name = (
            profile.get("display_name")
            or user.get("real_name")
            or profile.get("real_name")
            or user.get("name")
        )
        if name:
            users[user["id"]] = str(name)
    return users


def _malformed(exc: ValueError) -> str:
    if isinstance(exc, _Unusable):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    return f"malformed JSON: {str(exc)[:80]}"
