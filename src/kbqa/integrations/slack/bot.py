"""The Bolt app, a thin layer over the core (KnowledgeBase). Bolt acknowledges each event at once
and runs our listener in a worker thread, so Slack's 3-second deadline is met however long an
answer takes; the core is safe to share between those threads and follows other processes'
ingests by itself."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from kbqa.errors import MissingDependencyError
from kbqa.integrations.slack.blocks import FEEDBACK_DOWN, FEEDBACK_UP, answer_blocks
from kbqa.retrieval.access import Audience

log = logging.getLogger(__name__)

WORKING_TEXT = "Searching the knowledge base…"
# What a channel sees when answering fails; the reason goes to the log, never to the channel.
FAILED_TEXT = "Sorry, I could not answer that: something went wrong on my side (it is logged)."
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


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
    bot = _Bot(kb)
    app.event("app_mention")(bot.on_mention)
    app.event("message")(bot.on_message)
    app.action(re.compile(f"^({FEEDBACK_UP}|{FEEDBACK_DOWN})$"))(bot.on_feedback)
    return app


class _Bot:
    def __init__(self, kb):
        self.kb = kb
        self.channel_names: dict[str, str] = {}

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
        try:
            history, thread_start = [], ""
            if event.get("thread_ts"):
                history, thread_start = self._thread(client, channel, event, context)
            audience = Audience(channel, self._channel_name(client, channel))
            answer = self.kb.ask(question, audience=audience, history=history, context=thread_start)
            text, blocks = answer_blocks(answer)
            client.chat_update(channel=channel, ts=working["ts"], text=text, blocks=blocks)
        except Exception:
            # An exception's text can hold paths, SQL or a document's words: log it, say less.
            log.exception("answering %r in %s failed", question, channel)
            client.chat_update(channel=channel, ts=working["ts"], text=FAILED_TEXT, blocks=[])

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
                if pending is not None and text != WORKING_TEXT:
                    history.append((pending, text))
                    pending = None
            else:
                pending = text
        first = _MENTION.sub("", earlier[0].get("text", "")).strip() if earlier else ""
        return history[-2:], first

    def _channel_name(self, client, channel: str) -> str:
        if channel not in self.channel_names:
            try:
                info = client.conversations_info(channel=channel)
                self.channel_names[channel] = info["channel"].get("name") or channel
            except Exception:
                self.channel_names[channel] = channel
        return self.channel_names[channel]

    def on_feedback(self, ack, body: dict, client) -> None:
        ack()
        action = body["actions"][0]
        try:
            payload = json.loads(action.get("value") or "{}")
        except json.JSONDecodeError:
            payload = {}
        channel = body.get("channel", {}).get("id", "")
        user = body.get("user", {}).get("id", "")
        self.kb.feedback(
            1 if action["action_id"] == FEEDBACK_UP else -1,
            payload.get("q", ""),
            payload.get("a", ""),
            [{"uri": uri} for uri in payload.get("c", [])],
            user=user,
            channel=channel,
            message_ts=body.get("message", {}).get("ts", ""),
        )
        if channel and user:
            client.chat_postEphemeral(channel=channel, user=user, text="Thanks for the feedback!")
