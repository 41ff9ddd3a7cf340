"""The bot on the shared core: concurrent questions never fail, it follows another process's
ingest, and `kbqa serve --slack` acknowledges Slack's HTTP events at /slack/events."""

import json
import threading
import time

from fastapi.testclient import TestClient
from slack_sdk import WebClient

from kbqa.app import KnowledgeBase
from kbqa.integrations.slack import create_app
from kbqa.integrations.slack.bot import FAILED_TEXT
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.serve import create_app as create_service
from slackbot.test_bot import answers, blocks_of, event

QUESTIONS = [
    "what batch size does the tracker use for GPS pings?",
    "what is the vault write rotate-role command for staging-app?",
    "when is the maintenance window for the staging database rotation?",
]


def test_concurrent_questions_all_get_an_answer(app, api):
    n = 15
    threads = [
        threading.Thread(
            target=app.dispatch,
            args=(event("app_mention", f"<@UBOT> {QUESTIONS[i % 3]}", ts=f"1794600100.{i:06}"),),
        )
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    updates = answers(api, n)
    assert len(updates) == n
    assert all(u["text"] != FAILED_TEXT and "Sorry" not in u["text"] for u in updates)


def test_the_bot_follows_another_process_ingest(kb, api, tmp_path):
    kb.settings = kb.settings.replace(snapshot_check_seconds=0.05)
    kb.__dict__.pop("snapshots", None)  # a core whose periodic check uses the new setting
    app = create_app(kb, client=WebClient(token="xoxb-test", base_url=api.url))
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zeppelin.md").write_text("# Zeppelin\n\nThe zeppelin hangar opens at 06:15 daily.\n")
    KnowledgeBase(kb.settings, embedder=HashEmbedder()).ingest([extra])  # "another process"
    deadline, ts = time.monotonic() + 10, 0
    while time.monotonic() < deadline:
        ts += 1
        app.dispatch(
            event(
                "app_mention",
                "<@UBOT> when does the zeppelin hangar open?",
                ts=f"17946002{ts:02}.000100",
            )
        )
        text = json.dumps(blocks_of(answers(api, ts)[-1]))
        if "06:15" in text:
            break
        time.sleep(0.1)
    assert "06:15" in text and "zeppelin.md" in text


def test_serve_acknowledges_slack_events_over_http(kb, api):
    bolt = create_app(kb, client=WebClient(token="xoxb-test", base_url=api.url))
    client = TestClient(create_service(kb, slack=bolt), base_url="http://kb.example.com")
    request = event("app_mention", f"<@UBOT> {QUESTIONS[0]}")
    started = time.perf_counter()
    response = client.post(
        "/slack/events",
        content=request.raw_body,
        headers={k: v[0] for k, v in request.headers.items()},
    )
    assert response.status_code == 200 and time.perf_counter() - started < 3
    assert "[1]" in blocks_of(answers(api)[0])[0]["text"]["text"]
    forged = client.post(
        "/slack/events", content=request.raw_body, headers={"content-type": "application/json"}
    )
    assert forged.status_code == 401
