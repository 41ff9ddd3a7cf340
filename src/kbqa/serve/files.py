"""GET /files/PATH: the file of a document in the knowledge base, so that a file source on the
page is a link (render/page.py makes the links). Only a file that is an ingested document the
caller may see is served, and in a sandbox (no script of a document runs on this site)."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from kbqa.serve.api import in_worker
from kbqa.serve.auth import Caller, caller
from kbqa.serve.errors import ApiError

router = APIRouter(include_in_schema=False)
# Shown in the browser as they are; anything else (an office file) is downloaded.
_SHOWN = {"text/plain", "text/markdown", "text/html", "application/pdf", "text/csv"}


@router.get("/files/{path:path}")
async def document_file(request: Request, path: str, who: Annotated[Caller, Depends(caller)]):
    core, uri = request.app.state.core, "/" + path
    _, found = await in_worker(request, lambda: core.documents(0, 20, uri, "file", who.audience))
    file = Path(uri)
    if not any(d["uri"] == uri for d in found) or not file.is_file():
        raise ApiError(404, "no such document", "not_found")
    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if file.suffix.lower() in (".md", ".txt", ".rst"):
        kind = "text/plain; charset=utf-8"
    headers = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
    disposition = "inline" if kind.split(";")[0] in _SHOWN else "attachment"
    return FileResponse(
        file,
        media_type=kind,
        headers=headers,
        content_disposition_type=disposition,
        filename=file.name,
    )
