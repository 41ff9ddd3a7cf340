"""The JSON API: /api/ask (with ?stream=1 for server-sent events), /api/feedback, /api/status,
/api/documents."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kbqa.assistant.queue import Ticket
from kbqa.errors import KbqaError
from kbqa.render import page
from kbqa.render.model import token_scope
from kbqa.serve.auth import Caller, caller
from kbqa.serve.errors import ApiError, body, internal_error
from kbqa.serve.progress import answered, give_back, in_worker, relay, take
from kbqa.types import Answer, Evidence

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    k: int | None = Field(None, ge=1, le=20)
    extractive: bool = False
    # Earlier turns of the same conversation, oldest first: [question, answer] pairs or
    # {"question": …, "answer": …} objects (what /api/ask returns has both keys).
    history: list[tuple[str, str]] = Field(default_factory=list, max_length=10)
    sources: list[str] = Field(default_factory=list, max_length=20)
    stream: bool = False

    @field_validator("history", mode="before")
    @classmethod
    def _turns(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value  # pydantic says it is not a list
        turns = []
        for turn in value:
            if isinstance(turn, dict) and {"question", "answer"} <= set(turn):
                turn = [turn["question"], turn["answer"]]
            if not (isinstance(turn, list | tuple) and len(turn) == 2):
                raise ValueError(
                    'each turn is ["question", "answer"] or {"question": …, "answer": …}'
                )
            turns.append(turn)
        return turns


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Literal[1, -1, "up", "down"]
    question: str = Field(max_length=4000)
    answer: str = Field(max_length=20000)
    citations: list[str] = Field(default_factory=list, max_length=20)  # the cited uris


def check_question(request: Request, question: str) -> str:
    limit = request.app.state.core.settings.max_question_chars
    question = question.strip()
    if not question:
        raise ApiError(400, "question: must not be empty", "empty_question")
    if len(question) > limit:
        raise ApiError(400, f"question: longer than {limit} characters", "question_too_long")
    return question


def ask_kwargs(who: Caller, ask: AskRequest, question: str) -> dict[str, Any]:
    return {
        "question": question,
        "k": ask.k,
        "extractive": ask.extractive,
        "audience": who.audience,
        "history": [tuple(pair) for pair in ask.history],
        "sources": ask.sources,
    }


@router.post("/ask")
async def ask(
    request: Request,
    ask: AskRequest,
    who: Annotated[Caller, Depends(caller)],
    stream: Annotated[bool, Query()] = False,
):
    """The answer as `kbqa ask --json` prints it; with ?stream=1 (or "stream": true) as
    server-sent events: `sentence` events as sentences pass the check, or `evidence` events (a
    unit quoted from passage n, with the words that answer) as the answer points at them, then
    `sources` (the cited and retrieved passages with label, age and link), then `answer` (that
    JSON, with `why` when it abstained). A generated answer waits its turn at the model:
    `progress` events ({stage, text, position}) say where it is, and beyond the queue's
    limit the answer is a 503 with Retry-After."""
    core = request.app.state.core
    question = check_question(request, ask.question)
    kwargs = ask_kwargs(who, ask, question)
    ticket = take(request, who.name, ask.extractive)
    if not (stream or ask.stream):
        answer = await answered(request, ticket, lambda: core.ask(**kwargs))
        return answer_json(answer, who)
    try:
        # Started here, so an empty knowledge base is a 503, not an event in a 200 stream.
        items = await in_worker(request, lambda: core.ask_stream(**kwargs))
    except BaseException:
        give_back(request, ticket)
        raise
    return StreamingResponse(
        _events(request, ticket, items, who),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def answer_json(answer: Answer, who: Caller) -> dict[str, Any]:
    """The answer's JSON; an abstention under a token limited to some sources says so, since
    the knowledge base may hold what that token may not see."""
    data = page.answer_data(answer)
    if answer.abstained:
        data["why"] += token_scope(who.searches)
    return data


async def _events(
    request: Request, ticket: Ticket | None, items: Iterator[str | Evidence | Answer], who: Caller
) -> AsyncIterator[str]:
    try:
        async for kind, item in relay(request, ticket, items):
            if kind == "progress":
                yield page.sse("progress", item)
            elif isinstance(item, Answer):
                yield page.sse("sources", page.sources(item))
                yield page.sse("answer", answer_json(item, who))
            elif isinstance(item, Evidence):
                yield page.sse("evidence", page.evidence_data(item))
            else:
                yield page.sse("sentence", {"text": item})
    except KbqaError as exc:
        yield page.sse("error", body(400, str(exc)))
    except Exception:
        yield page.sse("error", body(500, internal_error("streaming an answer")))


@router.post("/feedback", status_code=201)
async def feedback(
    request: Request, rating: FeedbackRequest, who: Annotated[Caller, Depends(caller)]
):
    """Store a 👍 or 👎 on an answer."""
    value = {"up": 1, "down": -1}.get(rating.value, rating.value)
    core = request.app.state.core
    feedback_id = await in_worker(
        request,
        lambda: core.feedback(
            value,
            rating.question,
            rating.answer,
            [{"uri": uri} for uri in rating.citations],
            user=who.name,
            channel="web",
            # A token that may read a Slack channel's threads may have been shown private ones.
            private=who.audience is not None
            and any(p.startswith("#") for p in who.audience.sources),
        ),
    )
    return {"id": feedback_id, "value": value}


@router.get("/status")
async def status(request: Request, who: Annotated[Caller, Depends(caller)]):
    """Counts, models, index size and the last run (paths, sources and the database URL for
    admins)."""
    info = await in_worker(request, request.app.state.core.status)
    if not who.admin:
        info = {k: v for k, v in info.items() if k not in ("home", "database", "sources")}
        if info.get("last_run"):
            info["last_run"] = {k: v for k, v in info["last_run"].items() if k != "roots"}
    return info


@router.get("/documents")
async def documents(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    q: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[Literal["", "file", "slack"], Query()] = "",
):
    """The documents the caller may see, newest first; `q` filters on path/URL and title."""
    core = request.app.state.core
    total, page = await in_worker(
        request, lambda: core.documents(offset, limit, q, kind, who.audience)
    )
    return {"total": total, "offset": offset, "limit": limit, "documents": page}
