"""Reading channels from the live Slack Web API with slack_sdk's WebClient."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from kbqa.errors import KbqaError, MissingDependencyError

if TYPE_CHECKING:
    from slack_sdk import WebClient

_TOKEN = "check SLACK_BOT_TOKEN (the bot token, xoxb-…)"
# What to do about the errors a sync meets most; {where} is "#channel" or "the workspace".
_ADVICE = {
    "not_in_channel": "invite the bot to {where}",
    "channel_not_found": "check the name, and invite the bot to {where} if it is private",
    "is_archived": "unarchive {where} or leave it out",
    "missing_scope": "add the {needed} scope to the Slack app and reinstall it",
    "ratelimited": "Slack kept rate limiting the requests; try again in a few minutes",
    "invalid_auth": _TOKEN,
    "not_authed": _TOKEN,
    "token_revoked": _TOKEN,
    "token_expired": _TOKEN,
    "account_inactive": _TOKEN,
}


@dataclass(frozen=True)
class FetchedChannel:
    """What one sync read from a channel."""

    id: str
    name: str
    private: bool
    # Raw message dicts: top-level messages since `oldest` and every reply of their threads,
    # each ts once, oldest first.
    messages: list[dict]
    latest_ts: str  # the newest ts seen, to pass as the next `oldest`; the old value if none


def make_client(token: str, base_url: str | None = None) -> WebClient:
    """A WebClient that waits out rate limits (Retry-After) and retries dropped connections."""
    try:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
        )
    except ImportError:
        raise MissingDependencyError("slack_sdk", "slack") from None
    options: dict[str, Any] = {"base_url": base_url} if base_url else {}
    handlers = [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),
    ]
    return WebClient(token=token, retry_handlers=handlers, **options)


class SlackFetcher:
    """Channels, messages and user names through a WebClient; Slack errors become KbqaErrors."""

    def __init__(self, client: WebClient, page_size: int = 200):
        try:
            from slack_sdk.errors import SlackApiError
        except ImportError:
            raise MissingDependencyError("slack_sdk", "slack") from None
        self.client = client
        self.page_size = page_size
        self._api_error = SlackApiError
        self._names: dict[str, str] = {}

    def workspace(self) -> str:
        """The workspace the token belongs to (YOUR-TEAM in https://YOUR-TEAM.slack.com, from
        Slack's `auth.test`); a refused token or an unreachable Slack is said as such."""
        from urllib.parse import urlsplit

        try:
            url = self.client.auth_test().get("url") or ""
        except self._api_error as exc:
            raise _api_failure("auth.test", "the token", exc) from exc
        except OSError as exc:
            raise _unreachable(exc) from exc
        host = urlsplit(url).hostname or ""
        if not host.endswith(".slack.com"):
            raise KbqaError(
                f"set slack_workspace (YOUR-TEAM in https://YOUR-TEAM.slack.com): Slack's "
                f"auth.test did not say it (url {url!r})"
            )
        return host.removesuffix(".slack.com")

    def channels(self, names: list[str]) -> list[tuple[str, str, bool]]:
        """(id, name, private) for the named channels, in the order named."""
        wanted = list(dict.fromkeys(name.lstrip("#") for name in names))
        if not wanted:
            return []
        found: dict[str, tuple[str, str, bool]] = {}
        pages = self._pages(
            "conversations.list",
            "the workspace",
            types="public_channel,private_channel",
            limit=self.page_size,
        )
        for page in pages:
            for channel in page.get("channels", []):
                if channel.get("name") in wanted:
                    found[channel["name"]] = (
                        channel["id"],
                        channel["name"],
                        bool(channel.get("is_private")),
                    )
            if len(found) == len(wanted):
                break
        missing = [f"#{name}" for name in wanted if name not in found]
        if missing:
            # conversations.list shows a private channel only to its members.
            raise KbqaError(
                f"no Slack channel {', '.join(missing)}: check the name, and invite the bot "
                "to private channels"
            )
        return [found[name] for name in wanted]

    def fetch(
        self, channel_id: str, name: str, private: bool, oldest: str | None
    ) -> FetchedChannel:
        """Messages since `oldest` (exclusive) with the full threads they start."""
        where = f"#{name}"
        history: dict[str, Any] = {"channel": channel_id, "limit": self.page_size}
        if oldest:
            history["oldest"] = oldest
        top = [
            m
            for page in self._pages("conversations.history", where, **history)
            for m in page.get("messages", [])
        ]
        messages: dict[str, dict] = {}
        for message in top:
            messages.setdefault(message.get("ts", ""), message)
        for parent in top:
            if _count(parent.get("reply_count")) > 0:
                replies = self._pages(
                    "conversations.replies",
                    where,
                    channel=channel_id,
                    ts=parent["ts"],
                    limit=self.page_size,
                )
                for page in replies:
                    for reply in page.get("messages", []):
                        # The parent comes back first: the copy from history is kept.
                        messages.setdefault(reply.get("ts", ""), reply)
        ordered = sorted(messages.values(), key=lambda m: _ts_key(m.get("ts")) or Decimal(0))
        stamps = [m["ts"] for m in ordered if _ts_key(m.get("ts")) is not None]
        latest = stamps[-1] if stamps else oldest or ""
        return FetchedChannel(channel_id, name, private, ordered, latest)

    def user_names(self, user_ids: set[str]) -> dict[str, str]:
        """id -> display name (else real name, else user name); unknown ids map to themselves."""
        for user_id in sorted(user_ids - self._names.keys()):
            try:
                user = self.client.users_info(user=user_id).get("user") or {}
            except self._api_error as exc:
                if exc.response.get("error") != "user_not_found":
                    raise _api_failure("users.info", "the workspace", exc) from exc
                user = {}
            except OSError as exc:
                raise _unreachable(exc) from exc
            profile = user.get("profile") or {}
            self._names[user_id] = (
                profile.get("display_name")
                or user.get("real_name")
                or profile.get("real_name")
                or user.get("name")
                or user_id
            )
        return {user_id: self._names[user_id] for user_id in user_ids}

    def _pages(self, method: str, where: str, **params: Any) -> Iterator[dict]:
        """Each page of a cursor-paginated method."""
        call = getattr(self.client, method.replace(".", "_"))
        cursor = None
        while True:
            try:
                page = call(**params, **({"cursor": cursor} if cursor else {}))
            except self._api_error as exc:
                raise _api_failure(method, where, exc) from exc
            except OSError as exc:
                raise _unreachable(exc) from exc
            yield page
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return


def _api_failure(method: str, where: str, exc: Any) -> KbqaError:
    response = exc.response
    error = str(response.get("error") or f"HTTP {response.status_code}")
    advice = _ADVICE.get(error, "")
    if advice:
        advice = ": " + advice.format(where=where, needed=response.get("needed") or "missing")
    return KbqaError(f"Slack refused {method} for {where} ({error}){advice}")


def _unreachable(exc: OSError) -> KbqaError:
    reason = getattr(exc, "reason", None) or exc
    return KbqaError(f"cannot reach Slack ({reason}): check the network and try again")


def _ts_key(ts: Any) -> Decimal | None:
    try:
        return Decimal(str(ts)) if ts else None
    except InvalidOperation:
        return None


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
