"""The web pages: `/` to ask (the answer itself is fetched and drawn by static/app.js) and
`/admin`, rendered on the server: sources, documents, last runs and failed files, tokens, and
the connected sources with their syncs (and a "sync now" button)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from kbqa.client import is_local_secret
from kbqa.render.page import code_html
from kbqa.serve.auth import LOCAL, Caller, admin, is_loopback, secret_of
from kbqa.stale import conflicts, stale_sources

router = APIRouter(include_in_schema=False)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _when(value: str | None) -> str:
    if not value:
        return ""
    stamp = datetime.fromisoformat(value)
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M")


_templates.filters["when"] = _when
# A Slack thread's title is its first line: `code` in it is shown as code, not in backticks.
_templates.filters["code"] = lambda text: Markup(code_html(text or ""))


def open_from_here(request: Request, who: Caller) -> bool:
    """The caller got in with no token only because the request comes from this machine and
    `allow_loopback_without_token` is on (auth.identify), which the admin page says."""
    if who != LOCAL or not request.app.state.core.settings.allow_loopback_without_token:
        return False
    secret = secret_of(request)
    cli = is_local_secret(secret, getattr(request.app.state, "local_secret", ""))
    return is_loopback(request) and not cli


def render(name: str, **values) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**values))


@router.get("/", response_class=HTMLResponse)
async def index(request: Request):
    # Public: the page itself holds no data; its requests to /api are authenticated.
    return render(
        "index.html", max_question_chars=request.app.state.core.settings.max_question_chars
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request,
    who: Annotated[Caller, Depends(admin)],
    q: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[Literal["", "file", "slack"], Query()] = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
):
    core = request.app.state.core
    per_page = 50
    total, documents = core.documents((page - 1) * per_page, per_page, q, kind)
    runs = core.runs(10)
    # The files that failed in the latest run of each root, with the latest reason.
    failed: dict[str, dict] = {}
    for run in reversed(runs):
        for item in run["failed"]:
            failed[item["file"]] = {**item, "run": run["id"], "when": run["started_at"]}
    return render(
        "admin.html",
        who=who,
        open_from_here=open_from_here(request, who),
        status=core.status(),
        sources=core.sources(),
        documents=documents,
        total=total,
        page=page,
        pages=max(1, -(-total // per_page)),
        q=q,
        kind=kind,
        runs=runs,
        failed=sorted(failed.values(), key=lambda f: f["file"]),
        tokens=core.tokens(),
        connectors=request.app.state.syncs.states(),
        # The stale block (templates/stale.html): what a docs owner fixes first.
        stale_after_days=core.settings.stale_after_days,
        stale=stale_sources(core),
        disagree=conflicts(core) if page == 1 else [],
    )


@router.post("/admin/sources/{name}/sync")
def sync_now(request: Request, name: str, who: Annotated[Caller, Depends(admin)]):
    """The admin page's "sync now": starts the source's sync unless one is running."""
    from fastapi.responses import RedirectResponse

    from kbqa.serve.errors import ApiError

    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(403, "sync requests come from the admin page only", "bad_origin")
    if name not in {c.name for c in request.app.state.core.settings.sources}:
        raise ApiError(404, f"no source named {name!r}", "no_source")
    started = request.app.state.syncs.sync_now(name)
    return RedirectResponse(f"/admin?synced={name}&started={int(started)}#h-connectors", 303)
