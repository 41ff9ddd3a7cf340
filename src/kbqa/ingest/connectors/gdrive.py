"""Google Drive (REST v3): the files under the scope folders, then the changes log
(`changes.list` with includeRemoved) for edits, moves and removals. Google Docs, Sheets and
Slides are exported as Markdown, CSV and text; other files are downloaded and parsed as files.

The token is a bearer token with the drive.readonly scope: a service account's access token or
a user's OAuth token (kbqa does not mint or refresh it)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from kbqa.errors import ConfigError
from kbqa.ingest.connectors.base import Access, Content, ItemError, Listing, RemoteItem
from kbqa.ingest.connectors.config import SourceConfig, need_token
from kbqa.ingest.connectors.http import Http, RemoteError
from kbqa.ingest.files import SUPPORTED_SUFFIXES

log = logging.getLogger(__name__)

API = "/drive/v3"
FOLDER = "application/vnd.google-apps.folder"
# Google's own formats and what each is exported as (mime type, file suffix).
EXPORTS = {
    "application/vnd.google-apps.document": ("text/markdown", ".md"),
    "application/vnd.google-apps.spreadsheet": ("text/csv", ".csv"),
    "application/vnd.google-apps.presentation": ("text/plain", ".txt"),
}
FILE_FIELDS = (
    "id,name,mimeType,parents,trashed,version,modifiedTime,md5Checksum,size,webViewLink,"
    "lastModifyingUser(displayName,emailAddress),permissions(type,role,emailAddress,domain)"
)
MAX_BYTES = 100 * 1024 * 1024


class DriveGateway:
    """Every Drive call the connector makes; plain dicts back."""

    def __init__(self, http: Http):
        self.http = http

    def children(self, folder: str) -> Iterator[dict]:
        """The files and folders directly in `folder` (not trashed), page by page."""
        folder = folder.replace("'", "")  # an id has no quotes: none may end the query's string
        params = {
            "q": f"'{folder}' in parents and trashed = false",
            "fields": f"nextPageToken,files({FILE_FIELDS})",
            "pageSize": 1000,
            "supportsAllDrives": "true",
            "includeItemsFromAllDrives": "true",
        }
        while True:
            page = self.http.get_json(f"{API}/files", params)
            yield from page.get("files", [])
            if not page.get("nextPageToken"):
                return
            params = {**params, "pageToken": page["nextPageToken"]}

    def start_token(self) -> str:
        params = {"supportsAllDrives": "true"}
        return str(self.http.get_json(f"{API}/changes/startPageToken", params)["startPageToken"])

    def changes(self, token: str) -> tuple[list[dict], str]:
        """Every change since `token`, and the token to start from next time."""
        out: list[dict] = []
        while True:
            page = self.http.get_json(
                f"{API}/changes",
                {
                    "pageToken": token,
                    "includeRemoved": "true",
                    "pageSize": 1000,
                    "supportsAllDrives": "true",
                    "includeItemsFromAllDrives": "true",
                    "fields": f"nextPageToken,newStartPageToken,changes(fileId,removed,"
                    f"file({FILE_FIELDS}))",
                },
            )
            out += page.get("changes", [])
            if page.get("newStartPageToken"):
                return out, str(page["newStartPageToken"])
            token = page["nextPageToken"]

    def permissions(self, file_id: str) -> list[dict]:
        params = {
            "supportsAllDrives": "true",
            "fields": "permissions(type,role,emailAddress,domain)",
        }
        return self.http.get_json(f"{API}/files/{file_id}/permissions", params)["permissions"]

    def export(self, file_id: str, mime: str) -> bytes:
        return self.http.get_bytes(f"{API}/files/{file_id}/export", {"mimeType": mime})

    def download(self, file_id: str, dest: Path) -> None:
        """The file's bytes streamed into `dest`; a file over MAX_BYTES is a RemoteError."""
        params = {"alt": "media", "supportsAllDrives": "true"}
        self.http.download(f"{API}/files/{file_id}", dest, params, MAX_BYTES)


class DriveConnector:
    kind = "gdrive"

    def __init__(
        self, name: str, gateway: DriveGateway, folders: tuple[str, ...], anyone_is_public: bool
    ):
        self.name, self.gateway, self.folders = name, gateway, folders
        self.anyone_is_public = anyone_is_public

    def list(self, cursor: str | None) -> Listing:
        state = json.loads(cursor) if cursor else None
        if state:
            try:
                return self._changed(state)
            except RemoteError as exc:
                if exc.status not in (400, 404, 410):
                    raise
                listing = self._everything()
                listing.problems.insert(
                    0, ("changes", f"the page token was refused ({exc.reason}): listed again")
                )
                return listing
        return self._everything()

    def _everything(self) -> Listing:
        # The token first: whatever changes while the folders are read is read again next time.
        token = self.gateway.start_token()
        items, problems, complete = [], [], True
        folders: list[str] = []
        queue = deque(self.folders)
        while queue:
            folder = queue.popleft()
            if folder in folders:
                continue
            folders.append(folder)
            try:
                children = list(self.gateway.children(folder))
            except RemoteError as exc:
                problems.append((f"folder {folder}", str(exc)))
                complete = False
                continue
            for f in children:
                if f.get("mimeType") == FOLDER:
                    queue.append(f["id"])
                elif self._readable(f):
                    items.append(self._item(f))
        cursor = json.dumps({"token": token, "folders": folders})
        return Listing(items, complete=complete, cursor=cursor, problems=problems)

    def _changed(self, state: dict) -> Listing:
        changes, token = self.gateway.changes(state["token"])
        folders = set(state["folders"])
        latest: dict[str, dict] = {}
        for change in changes:  # the last change of a file is the one that counts
            if not change.get("fileId"):  # a shared drive's own change (changeType "drive")
                continue
            latest.pop(change["fileId"], None)
            latest[change["fileId"]] = change
        items, removed, problems = [], [], []
        new_folders: list[str] = []
        for fid, change in latest.items():
            f = change.get("file") or {}
            # A scope folder is inside by definition, wherever it sits.
            inside = fid in self.folders or bool(folders.intersection(f.get("parents", [])))
            gone = change.get("removed") or f.get("trashed") or not inside
            if f.get("mimeType") == FOLDER or fid in folders:  # a removal carries no mimeType
                if fid in folders and gone:
                    # A folder left the scope: what it held is found only by listing again.
                    listing = self._everything()
                    listing.problems.insert(0, (f"folder {fid}", "moved or removed: listed again"))
                    return listing
                if not gone and fid not in folders:
                    new_folders.append(fid)
                continue
            if gone or not self._readable(f):
                removed.append(fid)
            else:
                items.append(self._item(f))
        if new_folders:  # a folder moved in: its files arrive with no change of their own
            more = DriveConnector(
                self.name, self.gateway, tuple(new_folders), self.anyone_is_public
            )
            listing = more._everything()
            items += [i for i in listing.items if i.id not in {x.id for x in items}]
            problems += listing.problems
            folders.update(json.loads(listing.cursor or "{}").get("folders", []))
        cursor = json.dumps({"token": token, "folders": sorted(folders)})
        return Listing(items, complete=False, removed=removed, cursor=cursor, problems=problems)

    def _readable(self, f: dict) -> bool:
        if f.get("mimeType") in EXPORTS:
            return True
        if Path(f.get("name", "")).suffix.lower() not in SUPPORTED_SUFFIXES:
            return False
        return int(f.get("size") or 0) <= MAX_BYTES

    def _item(self, f: dict) -> RemoteItem:
        permissions = f.get("permissions")
        if permissions is None:  # shared drives leave them out of the file resource
            try:
                permissions = self.gateway.permissions(f["id"])
            except RemoteError:
                permissions = []  # unknown: restricted
        access = drive_access(permissions, self.anyone_is_public)
        own = f.get("md5Checksum") or f"{f.get('modifiedTime', '')}#{f.get('version', '')}"
        # Who may open it is part of the version: a re-share alone must re-store its access.
        seen = hashlib.sha256(json.dumps(access.as_dict(), sort_keys=True).encode()).hexdigest()
        return RemoteItem(
            id=f["id"],
            version=f"{own}|{seen[:12]}",
            title=f.get("name", f["id"]),
            url=f.get("webViewLink", f"https://drive.google.com/file/d/{f['id']}/view"),
            updated_at=f.get("modifiedTime", ""),
            author=(f.get("lastModifyingUser") or {}).get("displayName", ""),
            access=access,
            extra={"mimeType": f.get("mimeType", ""), "name": f.get("name", "")},
        )

    def fetch(self, item: RemoteItem) -> Content:
        mime = item.extra.get("mimeType", "")
        try:
            if mime in EXPORTS:
                export, _suffix = EXPORTS[mime]
                text = self.gateway.export(item.id, export).decode("utf-8", "replace")
                return Content(markdown=csv_markdown(text) if export == "text/csv" else text)
            name = item.extra.get("name", "") or item.id
            with tempfile.NamedTemporaryFile(suffix=Path(name).suffix, delete=False) as tmp:
                pass  # the caller deletes it after parsing; a failed download deletes it
            self.gateway.download(item.id, Path(tmp.name))
        except RemoteError as exc:
            raise ItemError(f"{item.title}: {exc.reason or exc}") from None
        return Content(file=Path(tmp.name), filename=name)


def drive_access(permissions: list[dict], anyone_is_public: bool) -> Access:
    """Access from a file's permissions: anyone (public only when the source says so), a
    domain, groups and users by email; none readable means restricted."""
    public, groups, users = False, set(), set()
    for p in permissions:
        kind = p.get("type")
        if kind == "anyone":
            public = public or anyone_is_public
        elif kind == "domain" and p.get("domain"):
            groups.add(f"gdrive-domain:{p['domain'].lower()}")
        elif kind == "group" and p.get("emailAddress"):
            groups.add(f"gdrive-group:{p['emailAddress'].lower()}")
        elif kind == "user" and p.get("emailAddress"):
            users.add(f"gdrive-user:{p['emailAddress'].lower()}")
    return Access(public=public, groups=tuple(sorted(groups)), users=tuple(sorted(users)))


def csv_markdown(text: str) -> str:
    """A sheet's CSV export as a Markdown table (the chunker keeps table rows together)."""
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)

    def line(row: list[str]) -> str:
        cells = [c.replace("|", "\\|").replace("\n", " ") for c in row] + [""] * (width - len(row))
        return "| " + " | ".join(cells) + " |"

    return "\n".join([line(rows[0]), "|" + " --- |" * width, *map(line, rows[1:])]) + "\n"


def build(config: SourceConfig) -> DriveConnector:
    """Drive from a `[[sources]]` entry: `scope` the folder ids, `token_env` a bearer token
    with drive.readonly, option `anyone_is_public` (default false)."""
    if not config.scope:
        raise ConfigError(f"source '{config.name}': scope must name the Drive folder ids to read")
    anyone = config.options.get("anyone_is_public", False)
    if not isinstance(anyone, bool):
        raise ConfigError(f"source '{config.name}': anyone_is_public must be true or false")
    url = config.url if config.url.startswith("http") else "https://www.googleapis.com"
    http = Http(url, headers={"Authorization": f"Bearer {need_token(config)}"})
    return DriveConnector(config.name, DriveGateway(http), config.scope, anyone)
