"""The Bolt app, a thin layer over the core (KnowledgeBase). Bolt acknowledges each event at once
and runs our listener in a worker thread, so Slack's 3-second deadline is met however long an
answer takes; the core is safe to share between those threads and follows other processes'
ingests by itself."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from kbqa.assistant.queue import BUSY_TEXT, Busy, call, describe
from kbqa.errors import KbqaError, MissingDependencyError
from kbqa.integrations.slack.blocks import FEEDBACK_DOWN, FEEDBACK_UP, answer_blocks
from kbqa.logs import error_id
from kbqa.retrieval.access import Audience

log = logging.getLogger(__name__)

WORKING_TEXT = "Searching the knowledge base…"
# What a channel sees when answering fails; the reason goes to the log, never to the channel.
FAILED_TEXT = "Sorry, I could not answer that: something went wrong on my side (error {id})."
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
# Slack conversation ids: C (channels), G (older private channels), D (direct messages).
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{4,}$")


def resolve_channel_sources(rules: dict[str, list[str]], client: Any) -> dict[str, list[str]]:
    """`slack_channel_sources` keyed by channel id: names ("#eng-help" or "eng-help") are
    looked up once through the Web API, so renaming a channel cannot lift its restriction.
    A name that does not resolve is a KbqaError naming it."""
    resolved: dict[str, list[str]] = {}
    names = {}
    for key, patterns in rules.items():
        if key == "*" or _CHANNEL_ID.match(key):
            resolved[key] = list(patterns)
        else:
            names[key.lstrip("#")] = list(patterns)
    if names:
        from kbqa.ingest.slack_api import SlackFetcher

        try:
            found = SlackFetcher(client).channels(list(names))
        except KbqaError as exc:
            raise KbqaError(f"setting 'slack_channel_sources': {exc}") from None
        for channel_id, name, _private in found:
            resolved[channel_id] = names[name]
    return resolved


def create_app(kb, client: Any = None, **app_options: Any):
    """A Bolt App answering through `kb` (a KnowledgeBase); tokens come from kb.settings, and
    with no `client` the Web API's URL from `slack_api_url` when it is set."""
    try:
        from slack_bolt import App
    except ImportError:
        raise MissingDependencyError("slack_bolt", "slack") from None
    settings = kb.settings
    options: dict[str, Any] = {"signing_secret": settings.slack_signing_secret or None}
    if client is not None:
        options["client"] = client
    elif settings.slack_api_url:
        from slack_sdk import WebClient

        options["client"] = WebClient(
            token=settings.slack_bot_token or None, base_url=settings.slack_api_url
        )
    else:
        options["token"] = settings.slack_bot_token or None
    app = App(**options, **app_options)
    bot = _Bot(kb, resolve_channel_sources(settings.slack_channel_sources, app.client))
    app.event("app_mention")(bot.on_mention)
    app.event("message")(bot.on_message)
    app.action(re.compile(f"^({FEEDBACK_UP}|{FEEDBACK_DOWN})$"))(bot.on_feedback)
    return app


class _Bot:
    def __init__(self, kb, restrictions: dict[str, list[str]] | None = None):
        self.kb = kb
        self.restrictions = restrictions or {}
        # channel id -> (name, private), for channels looked up successfully
        self.channels: dict[str, tuple[str, bool]] = {}

    def on_mention(self, event: dict, client, context) -> None:
        self._handle(event, client, context)

    def on_message(self, event: dict, client, context) -> None:
        # Channel messages are answered through app_mention; here only direct messages.
        if event.get("channel_type") == "im" and not event.get("subtype"):
            self._handle(event, client, context)

    def _handle(self, event: dict, client, context) -> None:
        if event.get("bot_id") or event.get("subtype") == "bot_message":
            return  # other bots, and ourselves
        if event.get("user") and event.get("user") == context.get("bot_user_id"):
            return
        question = _MENTION.sub("", event.get("text", "")).strip()
        if not question:
            return
        # Slack retries, and a mention in a DM arrives as two events: answer each message once.
        if not self.kb.claim(f"{event['channel']}:{event['ts']}"):
            return
        self._answer(event, question, client, context)

    def _answer(self, event: dict, question: str, client, context) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        try:
            client.reactions_add(channel=channel, name="eyes", timestamp=ts)
        except Exception:  # a missing reaction scope must not stop the answer
            log.debug("could not add a reaction", exc_info=True)
        working = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=WORKING_TEXT)
        queue = self.kb.queue
        try:
            # A burst from one channel waits behind the others' questions, not before them.
            ticket = queue.take(channel, _Placeholder(client, channel, working["ts"]))
        except Busy:
            client.chat_update(channel=channel, ts=working["ts"], text=BUSY_TEXT, blocks=[])
            return
        try:
            history, thread_start = [], ""
            if event.get("thread_ts"):
                history, thread_start = self._thread(client, channel, event, context)
            audience = self.audience(client, channel)
            answer = call(
                ticket,
                self.kb.ask,
                question,
                audience=audience,
                history=history,
                context=thread_start,
            )
            ticket.listener = None  # no progress over the answer
            text, blocks = answer_blocks(answer)
            client.chat_update(channel=channel, ts=working["ts"], text=text, blocks=blocks)
        except Exception:
            # An exception's text can hold paths, SQL or a document's words: log it with an id,
            # and tell the channel only the id.
            failure = error_id()
            log.exception("answering a question in %s failed (error %s)", channel, failure)
            try:
                client.chat_update(
                    channel=channel,
                    ts=working["ts"],
                    text=FAILED_TEXT.format(id=failure),
                    blocks=[],
                )
            except Exception:
                log.exception("could not report error %s in %s", failure, channel)
        finally:
            queue.give_back(ticket)

    def audience(self, client, channel: str) -> Audience:
        """Who will read the answer. A channel that cannot be looked up is answered from public
        content only, and its restriction (keyed by id) applies either way."""
        rules = self.restrictions.get(channel, self.restrictions.get("*"))
        info = self._channel(client, channel)
        return Audience(
            channel_id=channel,
            channel_name=info[0] if info else None,
            channel_sources=tuple(rules) if rules is not None else None,
            public_only=info is None,
        )

    def _thread(self, client, channel: str, event: dict, context) -> tuple[list, str]:
        """(earlier question/answer pairs, the thread's first message) for a follow-up."""
        replies = client.conversations_replies(channel=channel, ts=event["thread_ts"], limit=50)
        earlier = [m for m in replies.get("messages", []) if m.get("ts") != event["ts"]]
        bot_user = context.get("bot_user_id")
        history: list[tuple[str, str]] = []
        pending = None
        for message in earlier:
            text = _MENTION.sub("", message.get("text", "")).strip()
            if message.get("bot_id") or message.get("user") == bot_user:
                if pending is not None and text not in (WORKING_TEXT, BUSY_TEXT):
                    history.append((pending, text))
                    pending = None
            else:
                pending = text
        first = _MENTION.sub("", earlier[0].get("text", "")).strip() if earlier else ""
        return history[-2:], first

    def _channel(self, client, channel: str) -> tuple[str, bool] | None:
        """(name, private) of a channel, or None when Slack would not say (not cached, so a
        later question tries again)."""
        if channel not in self.channels:
            try:
                info = client.conversations_info(channel=channel)["channel"]
            except Exception as exc:
                log.warning(
                    "cannot look up Slack channel %s (%s): answering from public content only",
                    channel,
                    exc,
                )
                return None
            private = bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))
            self.channels[channel] = (info.get("name") or channel, private)
        return self.channels[channel]

    def on_feedback(self, ack, body: dict, client) -> None:
        ack()
        action = body["actions"][0]
        try:
            payload = json.loads(action.get("value") or "{}")
        except json.JSONDecodeError:
            payload = {}
        channel = body.get("channel", {}).get("id", "")
        user = body.get("user", {}).get("id", "")
        info = self._channel(client, channel) if channel else None
        self.kb.feedback(
            1 if action["action_id"] == FEEDBACK_UP else -1,
            payload.get("q", ""),
            payload.get("a", ""),
            [{"uri": uri} for uri in payload.get("c", [])],
            user=user,
            channel=channel,
            message_ts=body.get("message", {}).get("ts", ""),
            # Unknown counts as private: it then stays out of training data by default.
            private=info[1] if info else True,
        )
        if channel and user:
            client.chat_postEphemeral(channel=channel, user=user, text="Thanks for the feedback!")


class _Placeholder:
    """Shows a question's progress (queued, reading the sources, writing) in the message
    that stands in for its answer."""

    def __init__(self, client, channel: str, ts: str):
        self.client, self.channel, self.ts, self.shown = client, channel, ts, ""

    def __call__(self, stage: str, data: dict) -> None:
        text = describe(stage, data)
        if text != self.shown:
            self.shown = text
            self.client.chat_update(channel=self.channel, ts=self.ts, text=text)
