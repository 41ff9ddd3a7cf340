"""POST /v1/chat/completions: kbqa as an OpenAI-compatible "model", so chat clients and editor
plug-ins can use it. The reply's text is Markdown: the answer with its [n] citation markers (or,
when it points at evidence, the words that answer in bold over each unit as a `>` quote) and a
"Sources:" list (a file as an absolute link to its /files/ route on this server);
the full answer (the JSON of `kbqa ask --json`) is in the extra field `kbqa` of the response
(of the last chunk when streaming). GET /v1/models lists the one model, "kbqa"."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kbqa.assistant.queue import Ticket
from kbqa.errors import KbqaError
from kbqa.render import markdown
from kbqa.serve.api import check_question
from kbqa.serve.auth import Caller, caller
from kbqa.serve.errors import ApiError, body, internal_error
from kbqa.serve.progress import answered, give_back, in_worker, relay, take
from kbqa.serve.usage import tokenizer_of, usage
from kbqa.types import Answer, Evidence

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
MODEL = "kbqa"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str = ""


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class Options(BaseModel):
    """kbqa's own options, in the request's extra field `kbqa`."""

    model_config = ConfigDict(extra="forbid")
    k: int | None = Field(None, ge=1, le=20)
    extractive: bool = False
    sources: list[str] = Field(default_factory=list, max_length=20)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    # OpenAI's: a last chunk before [DONE] with no choices and the reply's `usage`.
    include_usage: bool = False


class ChatRequest(BaseModel):
    # Clients send temperature, max_tokens, user…: accepted and ignored.
    model_config = ConfigDict(extra="allow")
    model: str = MODEL
    messages: list[Message] = Field(min_length=1, max_length=50)
    stream: bool = False
    stream_options: StreamOptions | None = None
    kbqa: Options = Field(default_factory=Options)


def conversation(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """(the question: the last message, a user's; earlier (question, answer) pairs, a user
    message with no reply after it a turn whose answer is empty)."""
    if messages[-1].role != "user":
        raise ApiError(400, "messages: the last message must be the user's question")
    history: list[tuple[str, str]] = []
    pending = None
    for message in messages[:-1]:
        if message.role == "user":
            # Two in a row (a retry, a question sent again): the first is still the
            # conversation a follow-up leans on, not a message to drop.
            if pending is not None:
                history.append((pending, ""))
            pending = message.text()
        elif message.role == "assistant" and pending is not None:
            # Our own replies lead with notes and end with their sources: the model needs
            # only the answer.
            history.append((pending, markdown.answer_of(message.text())))
            pending = None
    if pending is not None:
        history.append((pending, ""))
    return messages[-1].text(), history[-3:]


@router.get("/models")
async def models(who: Annotated[Caller, Depends(caller)]):
    return {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "kbqa"}],
    }


@router.post("/chat/completions")
async def chat_completions(
    request: Request, chat: ChatRequest, who: Annotated[Caller, Depends(caller)]
):
    core = request.app.state.core
    question, history = conversation(chat.messages)
    question = check_question(request, question)
    kwargs = {
        "question": question,
        "k": chat.kbqa.k,
        "extractive": chat.kbqa.extractive,
        "audience": who.audience,
        "history": history,
        "sources": chat.kbqa.sources,
    }
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    ticket = take(request, who.name, chat.kbqa.extractive)
    if not chat.stream:
        answer = await answered(request, ticket, lambda: core.ask(**kwargs))
        content = markdown.markdown(answer, str(request.base_url), who.searches)
        return {
            "id": reply_id,
            "object": "chat.completion",
            "created": created,
            "model": chat.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": await in_worker(
                request,
                usage,
                tokenizer_of(core, chat.kbqa.extractive),
                [message.text() for message in chat.messages],
                content,
            ),
            "kbqa": answer.to_dict(),
        }
    try:
        items = await in_worker(request, lambda: core.ask_stream(**kwargs))
    except BaseException:
        give_back(request, ticket)
        raise
    counted = None  # (the tokenizer, the messages sent) when the client asked for usage
    if chat.stream_options and chat.stream_options.include_usage:
        counted = (tokenizer_of(core, chat.kbqa.extractive), [m.text() for m in chat.messages])
    return StreamingResponse(
        _chunks(request, ticket, items, reply_id, created, chat.model, counted, who.searches),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _chunks(
    request: Request,
    ticket: Ticket | None,
    items: Iterator[str | Evidence | Answer],
    reply_id: str,
    created: int,
    model: str,
    counted: tuple[Any, list[str]] | None = None,
    scope: tuple[str, ...] = (),
) -> AsyncIterator[str]:
    said: list[str] = []  # the reply's text as sent, for `usage`

    def frame(**fields: Any) -> str:
        data = {"id": reply_id, "object": "chat.completion.chunk", "created": created,
                "model": model, **fields}  # fmt: skip
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        said.append(delta.get("content", ""))
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return frame(choices=[choice], **({"usage": None} if counted else {}), **extra)

    yield chunk({"role": "assistant", "content": ""})
    sent = units = 0
    try:
        async for kind, item in relay(request, ticket, items):
            if kind == "progress":
                continue  # chat clients show only the reply's text
            if isinstance(item, Answer):
                if item.abstained or not (sent or units):
                    # Nothing was streamed (an abstention): the whole text now.
                    yield chunk({"content": markdown.body(item)})
                tail = markdown.footer(item, str(request.base_url), scope)
                if tail:
                    yield chunk({"content": tail})
                yield chunk({}, "stop", kbqa=item.to_dict())
                if counted:
                    tokens = await in_worker(request, usage, *counted, "".join(said))
                    yield frame(choices=[], usage=tokens)  # OpenAI's last chunk: usage alone
            elif isinstance(item, Evidence):
                yield chunk({"content": markdown.evidence_piece(item, first=not units)})
                units += 1
            else:
                yield chunk({"content": (" " if sent else "") + markdown.text_piece(item)})
                sent += 1
    except KbqaError as exc:
        yield f"data: {json.dumps(body(400, str(exc)))}\n\n"
    except Exception:
        message = internal_error("streaming a chat completion")
        yield f"data: {json.dumps(body(500, message))}\n\n"
    yield "data: [DONE]\n\n"
