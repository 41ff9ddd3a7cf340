"""The live sync's reads, through slack_sdk's real WebClient against a local mock of the API."""

import sys
import time

import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from kbqa.errors import KbqaError, MissingDependencyError
from kbqa.ingest.slack_api import SlackFetcher, make_client
from support import MockSlackApi

DEPLOYS = "C0DEPLOYS"


@pytest.fixture
def api():
    with MockSlackApi() as server:
        yield server


@pytest.fixture
def fetcher(api) -> SlackFetcher:
    return SlackFetcher(make_client("xoxb-test", base_url=api.url), page_size=2)


def page(messages: list[dict], cursor: str = "", key: str = "messages") -> dict:
    return {
        "ok": True,
        key: messages,
        "has_more": bool(cursor),
        "response_metadata": {"next_cursor": cursor},
    }


def msg(ts: str, text: str = "hello", **extra) -> dict:
    return {"type": "message", "user": "U0ALICE", "text": text, "ts": ts, **extra}


def test_history_is_read_page_by_page_with_the_cursors_slack_gave(api, fetcher):
    api.responses["conversations.history"] = [
        page([msg("1700000006.000100"), msg("1700000005.000100")], "bmV4dDox"),
        page([msg("1700000004.000100"), msg("1700000003.000100")], "bmV4dDoy"),
        page([msg("1700000002.000100")]),
    ]
    fetched = fetcher.fetch(DEPLOYS, "deploys", False, None)
    calls = api.params("conversations.history")
    assert [c.get("cursor") for c in calls] == [None, "bmV4dDox", "bmV4dDoy"]
    assert all(c["channel"] == DEPLOYS and c["limit"] == "2" for c in calls)
    assert "oldest" not in calls[0]
    assert [m["ts"] for m in fetched.messages] == [
        "1700000002.000100",
        "1700000003.000100",
        "1700000004.000100",
        "1700000005.000100",
        "1700000006.000100",
    ]
    assert (fetched.id, fetched.name, fetched.private) == (DEPLOYS, "deploys", False)
    assert fetched.latest_ts == "1700000006.000100"


def test_replies_are_fetched_for_threads_and_only_for_them(api, fetcher):
    parent = msg(
        "1700000010.000100", "deploy failed?", reply_count=3, thread_ts="1700000010.000100"
    )
    api.responses["conversations.history"] = [
        page(
            [
                # A reply sent to the channel too shows up in history, without a reply_count.
                msg(
                    "1700000013.000100", "fixed", thread_ts=parent["ts"], subtype="thread_broadcast"
                ),
                msg("1700000011.500000", "lunch?"),
                parent,
            ]
        )
    ]
    api.responses["conversations.replies"] = [
        page(
            [dict(parent, text="parent as replies returns it"), msg("1700000011.000100", "hm")],
            "cg==",
        ),
        page(
            [
                msg("1700000012.000100", "roll back", thread_ts=parent["ts"]),
                msg("1700000013.000100", "fixed", thread_ts=parent["ts"]),
            ]
        ),
    ]
    fetched = fetcher.fetch(DEPLOYS, "deploys", False, None)
    replies = api.params("conversations.replies")
    assert [(c["ts"], c.get("cursor")) for c in replies] == [
        (parent["ts"], None),
        (parent["ts"], "cg=="),
    ]
    assert all(c["channel"] == DEPLOYS for c in replies)
    ts = [m["ts"] for m in fetched.messages]
    assert ts == sorted(set(ts)) and len(ts) == 5  # each message once, oldest first
    first = next(m for m in fetched.messages if m["ts"] == parent["ts"])
    assert first["text"] == "deploy failed?"  # the copy from history is kept


def test_oldest_is_passed_through_and_the_newest_ts_is_kept(api, fetcher):
    api.responses["conversations.history"] = [page([msg("1700000020.000100", reply_count=1)])]
    api.responses["conversations.replies"] = [
        page([msg("1700000020.000100"), msg("1700000099.000200", thread_ts="1700000020.000100")])
    ]
    fetched = fetcher.fetch(DEPLOYS, "deploys", False, "1700000010.000100")
    assert api.params("conversations.history")[0]["oldest"] == "1700000010.000100"
    assert fetched.latest_ts == "1700000099.000200"  # a reply is the newest thing seen

    api.responses["conversations.history"] = [page([])]
    again = fetcher.fetch(DEPLOYS, "deploys", False, fetched.latest_ts)
    assert again.messages == [] and again.latest_ts == "1700000099.000200"
    assert fetcher.fetch(DEPLOYS, "deploys", False, None).latest_ts == ""


def test_a_rate_limit_is_waited_out_then_retried(api, fetcher):
    api.responses["conversations.history"] = [
        {"_status": 429, "_headers": {"Retry-After": "1"}},
        page([msg("1700000030.000100")]),
    ]
    started = time.monotonic()
    fetched = fetcher.fetch(DEPLOYS, "deploys", False, None)
    waited = time.monotonic() - started
    assert api.count("conversations.history") == 2
    assert 1.0 <= waited < 4.0  # Retry-After plus up to a second of jitter
    assert [m["ts"] for m in fetched.messages] == ["1700000030.000100"]


def test_a_rate_limit_that_does_not_lift_is_reported(api, fetcher):
    api.responses["conversations.history"] = [{"_status": 429, "_headers": {"Retry-After": "0"}}]
    with pytest.raises(KbqaError, match=r"ratelimited.*try again in a few minutes"):
        fetcher.fetch(DEPLOYS, "deploys", False, None)
    assert api.count("conversations.history") == 4  # the first try and three retries


def test_channels_are_found_across_pages_including_private_ones(api, fetcher):
    api.responses["conversations.list"] = [
        page(
            [
                {"id": "C0GENERAL", "name": "general", "is_private": False},
                {"id": DEPLOYS, "name": "deploys", "is_private": False},
            ],
            "Y2hhbm5lbHM6Mg==",
            key="channels",
        ),
        page([{"id": "G0SECPRIV", "name": "sec-private", "is_private": True}], key="channels"),
    ]
    found = fetcher.channels(["#sec-private", "deploys"])
    assert found == [("G0SECPRIV", "sec-private", True), (DEPLOYS, "deploys", False)]
    calls = api.params("conversations.list")
    assert [c.get("cursor") for c in calls] == [None, "Y2hhbm5lbHM6Mg=="]
    assert set(calls[0]["types"].split(",")) == {"public_channel", "private_channel"}


def test_the_channel_list_stops_once_every_name_is_found(api, fetcher):
    api.responses["conversations.list"] = [
        page([{"id": DEPLOYS, "name": "deploys"}], "bW9yZQ==", key="channels"),
    ]
    assert fetcher.channels(["deploys"]) == [(DEPLOYS, "deploys", False)]
    assert api.count("conversations.list") == 1


def test_unknown_channel_names_are_named_in_the_error(api, fetcher):
    api.responses["conversations.list"] = [
        page([{"id": DEPLOYS, "name": "deploys"}], key="channels")
    ]
    with pytest.raises(KbqaError, match="#nope, #gone") as info:
        fetcher.channels(["deploys", "nope", "#gone"])
    assert "invite the bot" in str(info.value)


def test_user_names_are_looked_up_once_each(api, fetcher):
    api.users["U0ALICE"] = "alice"
    assert fetcher.user_names({"U0ALICE", "U0GONE"}) == {"U0ALICE": "alice", "U0GONE": "U0GONE"}
    assert fetcher.user_names({"U0ALICE", "U0GONE"}) == {"U0ALICE": "alice", "U0GONE": "U0GONE"}
    assert api.count("users.info") == 2


def test_a_user_without_a_display_name_gets_the_real_name(api, fetcher):
    api.responses["users.info"] = lambda params: {
        "ok": True,
        "user": {
            "id": params["user"],
            "name": "bob",
            "real_name": "Bob Stone",
            "profile": {"display_name": ""},
        },
    }
    assert fetcher.user_names({"U0BOB"}) == {"U0BOB": "Bob Stone"}
    assert fetcher.user_names({"U0BOB"}) == {"U0BOB": "Bob Stone"}
    assert api.count("users.info") == 1


@pytest.mark.parametrize(
    ("method", "error", "expected"),
    [
        ("conversations.history", "not_in_channel", "invite the bot to #deploys"),
        ("conversations.history", "invalid_auth", "check SLACK_BOT_TOKEN"),
        ("conversations.history", "missing_scope", "add the channels:history scope"),
        ("conversations.list", "invalid_auth", "check SLACK_BOT_TOKEN"),
        ("users.info", "fatal_error", "Slack refused users.info for the workspace (fatal_error)"),
    ],
)
def test_slack_errors_become_one_line_kbqa_errors(api, fetcher, method, error, expected):
    api.responses[method] = [{"ok": False, "error": error, "needed": "channels:history"}]
    with pytest.raises(KbqaError) as info:
        if method == "conversations.history":
            fetcher.fetch(DEPLOYS, "deploys", False, None)
        elif method == "conversations.list":
            fetcher.channels(["deploys"])
        else:
            fetcher.user_names({"U0ALICE"})
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert f"({error})" in message


def test_an_unreachable_server_is_reported(api):
    url = api.url
    api.stop()
    client = make_client("xoxb-test", base_url=url)
    for handler in client.retry_handlers:  # keep the backoff between retries short
        handler.interval_calculator = FixedValueRetryIntervalCalculator(0.01)
    fetcher = SlackFetcher(client)
    with pytest.raises(KbqaError, match="cannot reach Slack") as info:
        fetcher.channels(["deploys"])
    assert "\n" not in str(info.value)


def test_make_client_needs_slack_sdk(monkeypatch):
    monkeypatch.setitem(sys.modules, "slack_sdk", None)
    with pytest.raises(MissingDependencyError, match=r"kbqa\[slack\]"):
        make_client("xoxb-test")


def test_the_mock_records_json_and_form_calls_and_rejects_unknown_methods(api):
    client = WebClient(token="xoxb-test", base_url=api.url)
    assert client.auth_test()["user_id"] == "UBOT"
    posted = client.chat_postMessage(channel=DEPLOYS, text="hi", thread_ts="1700000000.000001")
    second = client.chat_postMessage(channel=DEPLOYS, text="again")
    assert (posted["ts"], second["ts"]) == ("1700000000.000100", "1700000000.000200")
    client.reactions_add(channel=DEPLOYS, name="eyes", timestamp=posted["ts"])
    assert api.wait_for("reactions.add", 1, timeout=1.0)
    assert not api.wait_for("reactions.add", 2, timeout=0.05)
    assert api.params("chat.postMessage")[0]["thread_ts"] == "1700000000.000001"  # JSON body
    assert api.params("reactions.add")[0]["name"] == "eyes"  # form body
    with pytest.raises(Exception, match="unknown_method"):
        client.api_call("kbqa.nothing")
