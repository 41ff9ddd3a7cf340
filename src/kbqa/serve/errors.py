"""Every error the service returns is JSON of one shape, OpenAI's:
{"error": {"message": "...", "type": "...", "code": "..."}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kbqa.errors import KbqaError, ModelError, NotIndexedError
from kbqa.logs import error_id

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = "", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers


def body(status: int, message: str, code: str = "") -> dict:
    error = {"message": message, "type": _TYPES.get(status, "api_error")}
    if code:
        error["code"] = code
    return {"error": error}


def respond(status: int, message: str, code: str = "", headers: dict | None = None) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body(status, message, code), status_code=status, headers=headers)


def _field(error: dict) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid")


_EXAMPLES = {
    "/api/ask": '{"question": "How do I …?"}',
    "/api/feedback": '{"value": "up", "question": "…", "answer": "…"}',
    "/v1/chat/completions": '{"messages": [{"role": "user", "content": "How do I …?"}]}',
}


def _whole_body(error: dict) -> bool:
    # Not an object at all (text, a list, nothing): pydantic's wording names no field.
    return tuple(error.get("loc", ())) == ("body",)


def json_hint(path: str, what: str = "the request body is not a JSON object") -> str:
    """One line on what a body must be, with an example for the endpoint at `path`."""
    example = _EXAMPLES.get(path, "{…}")
    return f"{what}: send a JSON object such as {example}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return respond(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            hint = json_hint(request.url.path, "the request body is not valid JSON")
            return respond(400, hint, "invalid_json")
        if _whole_body(first):
            return respond(400, json_hint(request.url.path), "invalid_json")
        message = _field(first)
        # {"q": …}: the missing field comes first, and the key that was meant for it is named.
        unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
        if first.get("type") == "missing" and unknown:
            names = ", ".join(repr(str(e["loc"][-1])) for e in unknown)
            message += f" (unknown field {names})"
        return respond(400, message, "invalid_field")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException):
        return respond(exc.status_code, str(exc.detail))

    @app.exception_handler(NotIndexedError)
    async def not_indexed(_request: Request, exc: NotIndexedError):
        return respond(503, str(exc), "not_indexed")

    @app.exception_handler(ModelError)
    async def model_error(_request: Request, exc: ModelError):
        failure = error_id()
        log.error("model error (error %s): %s", failure, exc)
        return respond(503, f"the answering model is not available (error {failure}, logged)")

    @app.exception_handler(KbqaError)
    async def kbqa_error(_request: Request, exc: KbqaError):
        return respond(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return respond(500, internal_error(f"{request.method} {request.url.path}", exc))


def internal_error(what: str, exc: BaseException | None = None) -> str:
    """Log an unexpected failure with a new error id; the one line a client may see."""
    failure = error_id()
    log.error("%s failed (error %s)", what, failure, exc_info=exc or True)
    return f"internal error {failure} (the details are in the server's log)"
