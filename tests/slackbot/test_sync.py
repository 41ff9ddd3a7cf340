"""`kbqa sync slack` end to end: the Slack API (a local mock) -> thread documents -> the index,
resuming each channel from the position stored in the database."""

import pytest

from kbqa.app import KnowledgeBase
from kbqa.ingest.slack_api import make_client
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.store import SlackCursorRow
from support import MockSlackApi


def page(messages, cursor=""):
    return {
        "ok": True,
        "messages": messages,
        "has_more": bool(cursor),
        "response_metadata": {"next_cursor": cursor},
    }


PARENT = {
    "type": "message",
    "user": "U0ALICE",
    "ts": "1794600000.000100",
    "reply_count": 1,
    "thread_ts": "1794600000.000100",
    "text": "How do I drain a Kafka partition before a broker restart?",
}
REPLY = {
    "type": "message",
    "user": "U0BOB",
    "ts": "1794600060.000100",
    "thread_ts": "1794600000.000100",
    "text": "Run larkctl kafka drain --broker 3 and wait for the ISR to settle.",
}
LATER = {
    "type": "message",
    "user": "U0BOB",
    "ts": "1794700000.000100",
    "text": "Reminder: the deploy freeze starts on Monday 23 November.",
}


@pytest.fixture
def api():
    with MockSlackApi() as server:
        server.users.update({"U0ALICE": "alice", "U0BOB": "bob"})
        server.responses["conversations.list"] = [
            {
                "ok": True,
                "channels": [{"id": "C0OPS", "name": "ops", "is_private": False}],
                "response_metadata": {"next_cursor": ""},
            }
        ]
        yield server


def test_sync_paginates_backs_off_and_resumes_from_the_stored_position(tmp_path, api):
    settings = Settings(home=tmp_path / "home", slack_workspace="larkspur")
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    api.responses["conversations.history"] = [
        {"_status": 429, "_headers": {"Retry-After": "1"}},
        page([PARENT], "bmV4dDox"),
        page([]),
    ]
    api.responses["conversations.replies"] = [page([PARENT, REPLY])]
    client = make_client("xoxb-test", base_url=api.url)

    report, read = kb.sync_slack(["#ops"], client=client)

    assert read == {"ops": 2} and report.added == 1
    history = api.params("conversations.history")
    assert len(history) == 3  # the 429, then two pages
    assert history[2]["cursor"] == "bmV4dDox"
    hit = kb.retriever.search("drain kafka partition broker restart", 1)[0]
    assert hit.uri == "https://larkspur.slack.com/archives/C0OPS/p1794600000000100"
    assert "bob: Run larkctl kafka drain" in hit.text
    with kb.store.session() as s:
        assert s.get(SlackCursorRow, "C0OPS").last_ts == "1794600060.000100"

    # The next sync asks only for what is newer, and keeps what it indexed before.
    api.responses["conversations.history"] = [page([LATER])]
    report, read = kb.sync_slack(["ops"], client=client)
    assert api.params("conversations.history")[-1]["oldest"] == "1794600060.000100"
    assert (read, report.added, report.removed) == ({"ops": 1}, 1, 0)
    assert kb.store.counts()["documents"] == 2
    with kb.store.session() as s:
        assert s.get(SlackCursorRow, "C0OPS").last_ts == "1794700000.000100"


def test_sync_takes_the_workspace_for_permalinks_from_the_token(tmp_path, api):
    from kbqa.errors import KbqaError

    # No slack_workspace set: auth.test says the token's workspace (larkspur.slack.com).
    kb = KnowledgeBase(Settings(home=tmp_path / "home"), embedder=HashEmbedder())
    api.responses["conversations.history"] = [page([PARENT])]
    api.responses["conversations.replies"] = [page([PARENT, REPLY])]
    report, _ = kb.sync_slack(["ops"], client=make_client("xoxb-test", base_url=api.url))
    assert report.added == 1
    hit = kb.retriever.search("drain kafka partition broker restart", 1)[0]
    assert hit.uri.startswith("https://larkspur.slack.com/archives/C0OPS/")
    # A token Slack refuses: one line saying so and naming the token, not the setting.
    api.responses["auth.test"] = [{"ok": False, "error": "invalid_auth"}]
    kb = KnowledgeBase(Settings(home=tmp_path / "other"), embedder=HashEmbedder())
    with pytest.raises(KbqaError, match=r"refused auth.test .*\(invalid_auth\).*SLACK_BOT_TOKEN"):
        kb.sync_slack(["ops"], client=make_client("xoxb-test", base_url=api.url))
    # A Slack that answers without a workspace URL: the setting to set.
    api.responses["auth.test"] = [{"ok": True, "url": ""}]
    with pytest.raises(KbqaError, match="set slack_workspace"):
        kb.sync_slack(["ops"], client=make_client("xoxb-test", base_url=api.url))


def test_sync_without_the_network_says_slack_cannot_be_reached(tmp_path, api):
    from slack_sdk.http_retry.builtin_interval_calculators import (
        FixedValueRetryIntervalCalculator,
    )

    from kbqa.errors import KbqaError

    url = api.url
    api.stop()
    client = make_client("xoxb-test", base_url=url)
    for handler in client.retry_handlers:  # keep the backoff between retries short
        handler.interval_calculator = FixedValueRetryIntervalCalculator(0.01)
    kb = KnowledgeBase(Settings(home=tmp_path / "home"), embedder=HashEmbedder())
    with pytest.raises(KbqaError, match="cannot reach Slack") as info:
        kb.sync_slack(["ops"], client=client)
    assert "slack_workspace" not in str(info.value) and "\n" not in str(info.value)
