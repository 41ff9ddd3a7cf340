"""The real Bolt app, fed signed requests, talking to a local server that plays the Slack Web API.

Modelled on how slackapi/bolt-python tests itself: no network, and the tests count the Web API
calls the app makes."""

import json
import time
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from kbqa.assistant.queue import BUSY_TEXT
from kbqa.integrations.slack import create_app
from kbqa.integrations.slack.blocks import neutralize
from kbqa.integrations.slack.bot import FAILED_TEXT
from kbqa.store import FeedbackRow
from support import PRIVATE, PUBLIC, event, signed


def answers(api, n: int = 1) -> list[dict]:
    """The updates that replace the placeholder with an answer (or a failure), not those that
    show the question's progress (which carry no blocks)."""

    def final() -> list[dict]:
        return [p for m, p in api.calls if m == "chat.update" and "blocks" in p]

    deadline = time.monotonic() + 20
    while len(final()) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(final()) >= n, api.calls
    return final()


def blocks_of(update: dict) -> list[dict]:
    blocks = update["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def test_mention_is_answered_in_its_thread_with_sources(app, api):
    response = app.dispatch(
        event("app_mention", "<@UBOT> what batch size does the tracker use for GPS pings?")
    )
    assert response.status == 200
    update = answers(api)[0]
    posted = [p for m, p in api.calls if m == "chat.postMessage"]
    assert posted[0]["thread_ts"] == "1794600000.000100"  # a reply in the thread, never top level
    assert posted[0]["channel"] == PUBLIC
    assert api.count("reactions.add") == 1  # it shows that it is working
    blocks = blocks_of(update)
    assert blocks[0]["type"] == "section" and "[1]" in blocks[0]["text"]["text"]
    sources = blocks[1]["elements"][0]["text"]
    assert "https://larkspur.slack.com/archives/C05ENGHELP/p" in sources
    assert "#eng-help" in sources
    assert [e["action_id"] for e in blocks[2]["elements"]] == [
        "kbqa_feedback_up",
        "kbqa_feedback_down",
    ]


def test_direct_message_is_answered(app, api):
    app.dispatch(
        event(
            "message",
            "what is the vault write rotate-role command for staging-app?",
            channel="D0DM",
            channel_type="im",
        )
    )
    update = answers(api)[0]
    assert "rotate-role" in blocks_of(update)[0]["text"]["text"]


def test_the_placeholder_shows_the_progress_then_the_answer(app, api):
    app.dispatch(event("app_mention", "<@UBOT> what batch size does the tracker use?"))
    answers(api)
    shown = [p["text"] for m, p in api.calls if m == "chat.update"]
    assert shown[:2] == ["Reading the sources…", "Writing the answer…"]
    assert "[1]" in shown[-1]


def test_a_full_queue_is_said_in_the_thread(app, api, kb):
    held = [kb.queue.take(f"another-{i}") for i in range(kb.settings.queue_limit)]
    app.dispatch(event("app_mention", "<@UBOT> what batch size does the tracker use?"))
    update = answers(api)[0]
    assert update["text"] == BUSY_TEXT  # "busy: try again in a minute"
    for ticket in held:
        kb.queue.give_back(ticket)
    assert kb.queue.size() == 0


def test_a_retried_or_doubled_event_is_answered_once(app, api):
    text = "<@UBOT> what is the vault write rotate-role command for staging-app?"
    app.dispatch(event("app_mention", text))
    app.dispatch(event("app_mention", text))  # Slack's retry of the same event
    app.dispatch(event("message", text, channel_type="channel"))  # the same message as `message`
    answers(api)
    time.sleep(0.5)
    assert api.count("chat.postMessage") == 1


def test_own_and_other_bot_messages_are_ignored(app, api):
    app.dispatch(
        event(
            "message",
            "a bot speaking",
            channel="D0DM",
            channel_type="im",
            bot_id="B0OTHER",
            ts="1794600001.000100",
        )
    )
    app.dispatch(
        event(
            "message", "me", channel="D0DM", channel_type="im", user="UBOT", ts="1794600002.000100"
        )
    )
    time.sleep(0.5)
    assert api.count("chat.postMessage") == 0


@pytest.mark.parametrize(
    "make_request",
    [
        lambda body: signed(body, "application/json", secret="forged-secret"),
        lambda body: signed(body, "application/json", timestamp=int(time.time()) - 600),
    ],
    ids=["forged signature", "stale timestamp"],
)
def test_unsigned_or_stale_requests_are_rejected(app, api, make_request):
    body = event("app_mention", "<@UBOT> anything").body
    response = app.dispatch(make_request(json.dumps(body)))
    assert response.status == 401
    time.sleep(0.3)
    assert api.count("chat.postMessage") == 0


def test_feedback_click_is_stored_and_acknowledged(app, api, kb):
    app.dispatch(
        event("app_mention", "<@UBOT> what is the vault write rotate-role command for staging-app?")
    )
    update = answers(api)[0]
    button = blocks_of(update)[-1]["elements"][1]  # 👎
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "user": {"id": "U0RATER"},
        "channel": {"id": PUBLIC},
        "message": {"ts": "1794600000.000200"},
        "trigger_id": "t",
        "container": {"type": "message"},
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": "b",
                "value": button["value"],
                "type": "button",
                "action_ts": "1",
            }
        ],
    }
    response = app.dispatch(
        signed(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    )
    assert response.status == 200
    assert api.wait_for("chat.postEphemeral", 1, timeout=10)
    with kb.store.session() as s:
        row = s.scalars(select(FeedbackRow)).one()
    assert (row.value, row.user, row.channel) == (-1, "U0RATER", PUBLIC)
    assert row.question == "what is the vault write rotate-role command for staging-app?"
    assert "rotate-role" in row.answer and row.citations


def test_private_channel_thread_is_never_cited_elsewhere(app, api):
    question = "when are the lk-breakglass break-glass credentials rotated next?"
    app.dispatch(event("app_mention", f"<@UBOT> {question}", channel=PUBLIC))
    public = json.dumps(blocks_of(answers(api, 1)[0]))
    assert "G05SECPRIV" not in public and "sec-private" not in public
    app.dispatch(
        event("app_mention", f"<@UBOT> {question}", channel=PRIVATE, ts="1794600009.000100")
    )
    private = json.dumps(blocks_of(answers(api, 2)[1]))
    assert "G05SECPRIV" in private


def test_channel_restrictions_limit_the_sources(tmp_path, api, kb):
    kb.settings = kb.settings.replace(slack_channel_sources={"eng-help": ["#deploys"]})
    # Names in settings are resolved to channel ids when the bot starts.
    api.responses["conversations.list"] = [
        {"ok": True, "channels": [{"id": PUBLIC, "name": "eng-help"}], "has_more": False}
    ]
    app = create_app(kb, client=WebClient(token="xoxb-test", base_url=api.url))
    app.dispatch(
        event("app_mention", "<@UBOT> what is the vault write rotate-role command for staging-app?")
    )
    text = json.dumps(blocks_of(answers(api)[0]))
    assert "runbook.md" not in text and "C05ENGHELP" not in text


def test_a_document_cannot_ping_the_channel(app, api):
    app.dispatch(
        event(
            "app_mention",
            "<@UBOT> when is the maintenance window for the staging database rotation?",
        )
    )
    update = answers(api)[0]
    blocks = blocks_of(update)
    # Everything Slack renders as message text (button values are never rendered).
    shown = [update["text"], blocks[0]["text"]["text"]]
    shown += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert any("maintenance window" in text for text in shown)  # the document was quoted…
    for text in shown:  # …but cannot ping anyone
        assert "<!channel>" not in text and "<!here>" not in text and "<@U0ALICE>" not in text
    assert neutralize("<!channel> @here <@U1>") == "&lt;!channel&gt; @\u200bhere &lt;@U1&gt;"


def test_a_failure_is_said_in_the_thread_without_its_reason(app, api, kb, caplog):
    kb.__dict__["generator"] = None  # break the answerer
    kb.ask = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("model exploded"))
    app.dispatch(
        event("app_mention", "<@UBOT> what is the vault write rotate-role command for staging-app?")
    )
    update = answers(api)[0]
    # It says it failed, but never the exception's text (which can hold paths or documents'
    # words); the reason goes to the log.
    assert update["text"].startswith(FAILED_TEXT.split("(")[0]) and "exploded" not in json.dumps(
        update
    )
    assert "model exploded" in caplog.text


def test_follow_up_in_a_thread_uses_the_thread_as_context(app, api):
    api.responses["conversations.replies"] = [
        {
            "ok": True,
            "messages": [
                {
                    "ts": "1794600000.000100",
                    "user": "U0ASKER",
                    "text": "<@UBOT> what batch size does the tracker use for GPS pings?",
                },
                {
                    "ts": "1794600000.000200",
                    "user": "UBOT",
                    "bot_id": "BBOT",
                    "text": "The tracker writes GPS pings in batches [1].",
                },
                {
                    "ts": "1794600050.000100",
                    "user": "U0ASKER",
                    "text": "<@UBOT> and why that size?",
                },
            ],
        }
    ]
    app.dispatch(
        event(
            "app_mention",
            "<@UBOT> and why that size?",
            ts="1794600050.000100",
            thread_ts="1794600000.000100",
        )
    )
    update = answers(api)[0]
    replies = [p for m, p in api.calls if m == "conversations.replies"]
    assert replies and replies[0]["ts"] == "1794600000.000100"
    posted = next(p for m, p in api.calls if m == "chat.postMessage")
    assert posted["thread_ts"] == "1794600000.000100"
    assert "tracker" in json.dumps(blocks_of(update)).lower()


def test_long_answers_and_many_sources_fit_slacks_block_limits():
    from kbqa.integrations.slack.blocks import answer_blocks
    from kbqa.types import Answer, Citation, Hit

    hits = tuple(
        Hit(
            i,
            0.9,
            "x" * 5000,
            "H",
            f"https://larkspur.slack.com/archives/C1/p{i}",
            "T" * 400,
            {"kind": "slack", "channel": "ops", "last_ts": "1794600000.000100"},
        )
        for i in range(8)
    )
    answer = Answer(
        "q" * 3000,
        "word " * 2000,
        False,
        tuple(Citation(n, h) for n, h in enumerate(hits, 1)),
        hits,
    )
    text, blocks = answer_blocks(answer)
    assert len(blocks[0]["text"]["text"]) <= 3000 and blocks[0]["text"]["text"].endswith("…")
    assert len(blocks[1]["elements"]) == 5  # at most five sources
    assert all(len(e["text"]) <= 1000 for e in blocks[1]["elements"])
    assert all(len(b["value"]) <= 2000 for b in blocks[2]["elements"])
    assert json.loads(blocks[2]["elements"][0]["value"])["q"] == "q" * 400
    assert len(text) <= 3900


def test_an_abstention_and_dropped_sentences_are_explained_in_one_line():
    from kbqa.integrations.slack.blocks import answer_blocks
    from kbqa.types import Answer, Citation, Hit

    hit = Hit(1, 0.4, "Backups run nightly at 02:00 UTC.", "Backups", "/db.md", "Runbook")
    abstained = Answer(
        "q?",
        "I couldn't find this.",
        True,
        (),
        (hit,),
        reason="confidence 0.31 < min_confidence 0.5",
    )
    _, blocks = answer_blocks(abstained)
    lines = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert any("close enough to this question" in line for line in lines)  # plain words
    kept = Answer(
        "q?",
        "Backups run at 02:00 UTC [1].",
        False,
        (Citation(1, hit),),
        (hit,),
        mode="generated",
        dropped=(("Ask <!channel>.", "not supported by any source (best [1])"),),
    )
    _, blocks = answer_blocks(kept)
    lines = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert "(1 generated sentence left out: not supported by any source)" in lines


def test_a_quoted_answer_shows_the_words_that_answer_in_bold():
    from kbqa.integrations.slack.blocks import answer_blocks
    from kbqa.types import Answer, Citation, Hit

    hit = Hit(1, 0.8, "The tracker listens on port 7300.", "Ports", "/ports.md", "Ports")
    quoted = Answer(
        "which port does the tracker listen on?",
        "The tracker listens on port 7300 [1].",
        False,
        (Citation(1, hit),),
        (hit,),
        mode="extracted",
        span="7300",
    )
    _, blocks = answer_blocks(quoted)
    # Labelled as a quote (the sources' words), as on the page and in the CLI.
    assert blocks[0]["elements"][0]["text"] == "_Quoted from the sources:_"
    assert blocks[1]["text"]["text"] == "The tracker listens on port *7300* [1]."
    generated = Answer(
        quoted.question,
        quoted.text,
        False,
        quoted.citations,
        quoted.hits,
        mode="generated",
        span="7300",
    )
    _, blocks = answer_blocks(generated)  # the model's own sentence is shown as it wrote it
    assert "*" not in blocks[0]["text"]["text"]


def test_a_pointed_answer_is_a_quote_block_per_unit_with_the_span_in_bold(kb, api):
    from web.pointing import Pointing

    span = "vault write database/rotate-role/staging-app"
    client = WebClient(token="xoxb-test", base_url=api.url)
    app = create_app(Pointing(kb, [("vault write", span)]), client=client)
    app.dispatch(event("app_mention", "<@UBOT> how do I rotate the staging password?"))
    blocks = blocks_of(answers(api)[0])
    assert blocks[0]["elements"][0]["text"] == "_Quoted from the sources:_"
    assert blocks[1]["text"]["text"] == f">Run *{span}* to rotate the staging password. [1]"
    assert blocks[2]["type"] == "context" and "runbook.md" in blocks[2]["elements"][0]["text"]
    assert blocks[-1]["type"] == "actions"  # the feedback buttons
