"""Google Drive REST v3 on 127.0.0.1: files.list with `'<folder>' in parents` and pageToken
paging, export and alt=media downloads, changes.getStartPageToken and changes.list with
includeRemoved, Google's error bodies (401, 400 for an invalid page token, 404, 403 on export of
a binary file), and a call log. Tests edit, trash, delete and re-share files through methods."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

from .mock_loopback import Call, MockService, Reply

TOKEN = "ya29.test-drive-token"
ROOT = Path(__file__).resolve().parents[2]
PDF = (ROOT / "examples" / "handbook" / "policies" / "expenses.pdf").read_bytes()
FOLDER, DOC, SHEET, SLIDES = (
    "application/vnd.google-apps.folder",
    "application/vnd.google-apps.document",
    "application/vnd.google-apps.spreadsheet",
    "application/vnd.google-apps.presentation",
)


def perm(kind: str, who: str = "", role: str = "reader") -> dict:
    p: dict = {"kind": "drive#permission", "id": f"p-{kind}-{who}", "type": kind, "role": role}
    if kind in ("user", "group"):
        p["emailAddress"] = who
    if kind == "domain":
        p["domain"] = who
    return p


def fixture() -> dict[str, dict]:
    """id -> file (metadata plus `_content`, the text or bytes it holds)."""
    owner = perm("user", "owner@acme.com", "owner")
    files = [
        ("fld-eng", "Engineering", FOLDER, [], [owner], None),
        (
            "doc-onboard",
            "Onboarding guide",
            DOC,
            ["fld-eng"],
            [owner, perm("domain", "acme.com")],
            "# Onboarding\n\nNew engineers get a laptop on day one and a buddy for the first "
            "month.\n\n## Accounts\n\nRequest the VPN account from the service desk portal.\n",
        ),
        (
            "sheet-rota",
            "On-call rota",
            SHEET,
            ["fld-eng"],
            [owner, perm("group", "oncall@acme.com")],
            "week,primary,secondary\n49,Alice Moreau,Bjorn Lund\n50,Chen Wei,Dara Okafor\n",
        ),
        (
            "slides-q3",
            "Q3 roadmap",
            SLIDES,
            ["fld-eng"],
            [owner, perm("user", "alice@acme.com", "commenter")],
            "Q3 roadmap\n\nShip the heron scheduler and retire the pelican queue.\n",
        ),
        ("fld-pol", "Policies", FOLDER, ["fld-eng"], [owner], None),
        ("pdf-exp", "expenses.pdf", "application/pdf", ["fld-pol"], [owner, perm("anyone")], PDF),
        (
            "md-secret",
            "break-glass.md",
            "text/markdown",
            ["fld-pol"],
            [owner, perm("user", "bob@acme.com", "writer")],
            "# Break glass\n\nThe break-glass root password is stored in envelope walrus-17.\n",
        ),
        ("png-logo", "logo.png", "image/png", ["fld-eng"], [owner], b"\x89PNG\r\n\x1a\n"),
        ("fld-other", "Marketing", FOLDER, [], [owner], None),
        (
            "doc-other",
            "Campaign plan",
            DOC,
            ["fld-other"],
            [owner],
            "# Campaign\n\nThe spring campaign launches in April.\n",
        ),
    ]
    out = {}
    for fid, name, mime, parents, perms, content in files:
        out[fid] = {
            "kind": "drive#file",
            "id": fid,
            "name": name,
            "mimeType": mime,
            "parents": parents,
            "trashed": False,
            "version": "3",
            "modifiedTime": "2026-11-02T09:30:00.000Z",
            "webViewLink": f"https://drive.google.com/file/d/{fid}/view",
            "lastModifyingUser": {"displayName": "Owen Owner", "emailAddress": "owner@acme.com"},
            "permissions": perms,
            "_content": content,
        }
        if content is not None and not mime.startswith("application/vnd.google-apps"):
            data = content if isinstance(content, bytes) else content.encode()
            out[fid]["md5Checksum"] = hashlib.md5(data).hexdigest()
            out[fid]["size"] = str(len(data))
    return out


class MockDrive(MockService):
    def __init__(self, page_size: int = 2, shared_drive: bool = False) -> None:
        super().__init__()
        # As in a shared drive: files.list and changes.list leave `permissions` out.
        self.shared_drive = shared_drive
        self.files = fixture()
        self.page_size = page_size
        self.changes: list[tuple[str, bool]] = []  # (file id, removed); token N = index N-1
        self.oldest_token = 1  # tokens below this are invalid (an expired cursor)
        self.clock = 0

    # --- the world changing -------------------------------------------------------------
    def _touch(self, fid: str) -> None:
        f = self.files[fid]
        self.clock += 1
        f["version"] = str(int(f["version"]) + 1)
        f["modifiedTime"] = f"2026-12-01T10:{self.clock:02d}:00.000Z"
        self.changes.append((fid, False))

    def edit(self, fid: str, content: str | bytes) -> None:
        with self.lock:
            f = self.files[fid]
            f["_content"] = content
            if "md5Checksum" in f:
                data = content if isinstance(content, bytes) else content.encode()
                f["md5Checksum"] = hashlib.md5(data).hexdigest()
            self._touch(fid)

    def share(self, fid: str, permissions: list[dict]) -> None:
        """Replace the file's permissions: its version moves, its content and md5 do not."""
        with self.lock:
            self.files[fid]["permissions"] = permissions
            self.files[fid]["version"] = str(int(self.files[fid]["version"]) + 1)
            self.changes.append((fid, False))

    def trash(self, fid: str) -> None:
        with self.lock:
            self.files[fid]["trashed"] = True
            self._touch(fid)

    def delete(self, fid: str) -> None:
        with self.lock:
            del self.files[fid]
            self.changes.append((fid, True))

    def add(self, fid: str, name: str, mime: str, parent: str, content: str, perms: list) -> None:
        with self.lock:
            base = copy.deepcopy(self.files["doc-onboard"])
            base.update(
                id=fid,
                name=name,
                mimeType=mime,
                parents=[parent],
                permissions=perms,
                _content=content,
                webViewLink=f"https://drive.google.com/file/d/{fid}/view",
            )
            self.files[fid] = base
            self._touch(fid)

    def expire_tokens(self) -> None:
        with self.lock:
            self.oldest_token = len(self.changes) + 1

    # --- the API ----------------------------------------------------------------------------
    def _public(self, f: dict) -> dict:
        return _without_permissions(f) if self.shared_drive else _public(f)

    def serve(self, call: Call) -> Reply:
        if call.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(401, "Request had invalid authentication credentials.", "authError")
        path = call.path.removeprefix("/drive/v3")
        if path == "/files":
            return self._list(call.query)
        if path == "/changes/startPageToken":
            return _json(
                {"kind": "drive#startPageToken", "startPageToken": str(len(self.changes) + 1)}
            )
        if path == "/changes":
            return self._changes(call.query)
        m = re.fullmatch(r"/files/([\w-]+)(/export|/permissions)?", path)
        if not m or m.group(1) not in self.files:
            return _error(404, f"File not found: {m.group(1) if m else path}.", "notFound")
        f = self.files[m.group(1)]
        if m.group(2) == "/permissions":
            return _json({"kind": "drive#permissionList", "permissions": f["permissions"]})
        if m.group(2) == "/export":
            if not f["mimeType"].startswith("application/vnd.google-apps"):
                return _error(
                    403, "Only Google Docs Editors files can be exported.", "fileNotExportable"
                )
            return Reply(
                200, f["_content"].encode(), {"Content-Type": call.query.get("mimeType", "")}
            )
        if call.query.get("alt") == "media":
            if f["mimeType"].startswith("application/vnd.google-apps"):
                return _error(
                    403,
                    "Only files with binary content can be downloaded. Use Export with Docs "
                    "Editors files.",
                    "fileNotDownloadable",
                )
            data = f["_content"] if isinstance(f["_content"], bytes) else f["_content"].encode()
            return Reply(200, data, {"Content-Type": f["mimeType"]})
        return _json(self._public(f))

    def _list(self, query: dict[str, str]) -> Reply:
        m = re.search(r"'([\w-]+)' in parents", query.get("q", ""))
        if not m:
            return _error(400, "Invalid Value", "invalid", "q")
        hide_trashed = "trashed = false" in query.get("q", "") or "trashed=false" in query.get(
            "q", ""
        )
        found = [
            f
            for f in self.files.values()
            if m.group(1) in f["parents"] and not (hide_trashed and f["trashed"])
        ]
        found.sort(key=lambda f: f["id"])
        start = int(query.get("pageToken", "0") or 0)
        size = min(int(query.get("pageSize", "100")), self.page_size)
        body: dict = {
            "kind": "drive#fileList",
            "files": [self._public(f) for f in found[start : start + size]],
        }
        if start + size < len(found):
            body["nextPageToken"] = str(start + size)
        return _json(body)

    def _changes(self, query: dict[str, str]) -> Reply:
        token = query.get("pageToken", "")
        if not token.isdigit() or not self.oldest_token <= int(token) <= len(self.changes) + 1:
            return _error(400, "Invalid Value", "invalid", "pageToken")
        start = int(token) - 1
        size = min(int(query.get("pageSize", "100")), self.page_size)
        batch = self.changes[start : start + size]
        out = []
        for fid, removed in batch:
            change: dict = {
                "kind": "drive#change",
                "changeType": "file",
                "fileId": fid,
                "removed": removed or fid not in self.files,
                "time": "2026-12-01T10:00:00.000Z",
            }
            if not change["removed"]:
                change["file"] = self._public(self.files[fid])
            out.append(change)
        body: dict = {"kind": "drive#changeList", "changes": out}
        if start + size < len(self.changes):
            body["nextPageToken"] = str(start + size + 1)
        else:
            body["newStartPageToken"] = str(len(self.changes) + 1)
        return _json(body)


def _public(f: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in f.items() if not k.startswith("_")}


def _without_permissions(f: dict) -> dict:
    return {k: v for k, v in _public(f).items() if k != "permissions"}


def _json(body: dict) -> Reply:
    return Reply(
        200, json.dumps(body).encode(), {"Content-Type": "application/json; charset=UTF-8"}
    )


def _error(status: int, message: str, reason: str, location: str = "") -> Reply:
    err: dict = {"domain": "global", "reason": reason, "message": message}
    if location:
        err.update(locationType="parameter", location=location)
    body = {"error": {"code": status, "message": message, "errors": [err]}}
    return Reply(
        status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=UTF-8"}
    )
