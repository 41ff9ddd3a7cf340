"""One HTTP client per gateway: base URL, auth headers, timeouts, and retries that honour the
services' rate-limit headers. A token never reaches an error message or a log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from kbqa.errors import KbqaError
from kbqa.redact import redact

log = logging.getLogger(__name__)


class RemoteError(KbqaError):
    """The service answered with an error that retrying will not fix (or retries ran out)."""

    def __init__(self, url: str, status: int, reason: str):
        self.url, self.status, self.reason = url, status, reason
        super().__init__(f"{url}: HTTP {status}: {reason}" if status else f"{url}: {reason}")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying. Tests shrink the waits; a service's own Retry-After is honoured
    up to `max_wait` seconds per wait."""

    attempts: int = 6
    backoff: float = 1.0  # the first 5xx / connection-error wait; doubled each time
    max_backoff: float = 30.0
    max_wait: float = 300.0  # the longest a Retry-After / X-RateLimit-Reset is waited for


class _Retry(Exception):
    def __init__(self, wait: float, why: str):
        self.wait, self.why = wait, why


class Http:
    """An httpx.Client with a base URL and auth, and `get_json`, `post_json`, `get_bytes`."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: Any = None,
    ):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.calls = 0
        self.waited = 0.0
        headers = dict(headers or {})
        self._secrets = tuple(v.split(" ", 1)[-1] for v in headers.values() if v) + tuple(
            auth or ()
        )
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            auth=auth,
            timeout=timeout,
            follow_redirects=True,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self.request("GET", path, params=params))

    def post_json(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self.request("POST", path, params=params, json=body))

    def get_bytes(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        return self.request("GET", path, params=params).content

    def download(
        self,
        path: str,
        dest: Path,
        params: Mapping[str, Any] | None = None,
        max_bytes: int | None = None,
    ) -> int:
        """Stream the body into `dest` (a large file is never held in memory); its size. A
        body over `max_bytes`, or one cut off, is a RemoteError and leaves no file."""
        import httpx

        try:
            response = self.request("GET", path, params=params, stream=True)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        shown, size = self._safe(self.url(path).split("?")[0]), 0
        try:
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise RemoteError(shown, response.status_code, f"over {max_bytes} bytes")
                    out.write(chunk)
        except httpx.HTTPError as exc:
            dest.unlink(missing_ok=True)
            raise RemoteError(shown, 0, f"the download broke off ({type(exc).__name__})") from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        return size

    def paginate(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        next_of: Callable[[Any], str | None],
    ) -> Iterator[Any]:
        """Each page's JSON; `next_of(page)` gives the next page's path or URL (None: done)."""
        page = self.get_json(path, params)
        yield page
        while nxt := next_of(page):
            page = self.get_json(nxt)
            yield page

    def request(self, method: str, path: str, stream: bool = False, **kwargs: Any):
        """The response to a request, retried as the policy says; RemoteError otherwise.
        `stream`: the body is left unread for the caller, who closes the response."""
        import httpx

        url = self.url(path)
        shown = self._safe(url.split("?")[0])
        delay = self.retry.backoff
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self.calls += 1
                try:
                    request = self.client.build_request(method, url, **kwargs)
                    response = self.client.send(request, stream=stream)
                    if stream and response.status_code >= 400:  # its reason is in the body
                        response.read()
                        response.close()
                except httpx.HTTPError as exc:  # connection refused, reset, timed out
                    raise _Retry(delay, f"{type(exc).__name__}") from None
                self._check(response, shown, delay)
                return response
            except _Retry as retry:
                if attempt == self.retry.attempts:
                    raise RemoteError(
                        shown, 0, f"gave up after {attempt} tries: {retry.why}"
                    ) from None
                wait = min(retry.wait, self.retry.max_wait)
                log.info("%s: %s; retrying in %.1f s", shown, retry.why, wait)
                self.waited += wait
                self.sleep(wait)
                delay = min(delay * 2, self.retry.max_backoff)
        raise AssertionError("unreachable")

    def _check(self, response, shown: str, delay: float) -> None:
        status = response.status_code
        if status < 400:
            return
        if status == 429 or (status == 403 and _rate_limited(response)):
            wait = rate_limit_wait(response.headers)
            raise _Retry(delay if wait is None else wait, f"rate limited (HTTP {status})")
        if status >= 500:
            raise _Retry(delay, f"HTTP {status}")
        raise RemoteError(shown, status, self._safe(error_reason(response)))

    def _safe(self, text: str) -> str:
        return redact(text, self._secrets)

    def _json(self, response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                self._safe(str(response.request.url).split("?")[0]),
                response.status_code,
                "the answer is not JSON",
            ) from None


def _rate_limited(response) -> bool:
    headers = response.headers
    return (
        "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in response.text[:500].lower()
    )


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the service asks to wait: Retry-After (seconds or an HTTP date), else
    X-RateLimit-Reset (epoch seconds, or seconds from now when small); None if neither."""
    now = time.time() if now is None else now
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            pass
    reset = headers.get("x-ratelimit-reset") or headers.get("X-RateLimit-Reset")
    if reset:
        try:
            number = float(reset)
        except ValueError:
            try:  # Atlassian sends an ISO 8601 time
                from datetime import datetime

                number = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
        # An epoch time is large; a small number is already a count of seconds.
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)
    return None


def error_reason(response) -> str:
    """One line from an error body: the service's message where it gives one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = ""
    if isinstance(body, dict):
        for key in ("message", "errorMessages", "errors", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, list) and value:
                value = value[0]
            if isinstance(value, dict):
                value = value.get("message") or value.get("title") or next(iter(value.values()), "")
            if value:
                reason = str(value)
                break
    if not reason:
        reason = response.reason_phrase or "error"
    return " ".join(reason.split())[:200]
