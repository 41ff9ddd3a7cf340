"""The generation queue over HTTP: 503 with Retry-After beyond its limit, progress events in
the stream, and a client that goes away (a real uvicorn, an httpx client that closes mid-stream)
stopping its question, queued or being written."""

import dataclasses
import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from queue_support import Holder, SlowGenerator, wait_until

from kbqa.app import KnowledgeBase
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.serve import create_app
from kbqa.settings import Settings
from support import Server
from web.conftest import LOCAL

QUESTION = {"question": "How do I rotate the staging database password?"}


@pytest.fixture
def slow(tmp_path: Path, docs: Path) -> KnowledgeBase:
    settings = Settings(
        home=tmp_path / "home",
        min_hit_score=0.05,
        min_confidence=0.0,
        answer_style="free",
        queue_limit=3,
        queue_retry_seconds=45,
    )
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=SlowGenerator(delay=0.3))
    kb.ingest([docs])
    return kb


def events(response: httpx.Response):
    """(event, data) pairs of a server-sent event stream, as they arrive."""
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            yield event, json.loads(line[len("data: ") :])


def test_beyond_the_queue_a_generated_question_gets_503_with_retry_after(slow):
    client = TestClient(create_app(slow), base_url="http://127.0.0.1:8080", client=LOCAL)
    held = [slow.queue.take(f"someone-{i}") for i in range(3)]  # a channel holds half at most
    busy = client.post("/api/ask", json=QUESTION)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "45"
    assert busy.json()["error"]["code"] == "busy"
    assert "try again in a minute" in busy.json()["error"]["message"]
    streamed = client.post("/api/ask?stream=1", json=QUESTION)
    assert streamed.status_code == 503
    chat = {"messages": [{"role": "user", "content": QUESTION["question"]}]}
    assert client.post("/v1/chat/completions", json=chat).status_code == 503
    # A quoted (extractive) answer does not need the model, and is not queued.
    assert client.post("/api/ask", json={**QUESTION, "extractive": True}).status_code == 200
    for ticket in held:
        slow.queue.give_back(ticket)
    slow.settings = dataclasses.replace(slow.settings, queue_limit=16)
    answered = client.post("/api/ask", json=QUESTION)
    assert answered.status_code == 200 and answered.json()["answer"]
    assert slow.queue.size() == 0


def test_a_streamed_answer_shows_where_it_is_then_answers(slow):
    slow.generator.delay = 0.01
    holder = Holder(slow.queue)
    seen = []
    with (
        Server(create_app(slow)) as server,
        httpx.Client(base_url=server.url) as client,
        client.stream("POST", "/api/ask?stream=1", json=QUESTION, timeout=20) as response,
    ):
        assert response.status_code == 200
        for event, data in events(response):
            if event == "progress":
                seen.append((data["stage"], data["text"]))
                if data["stage"] == "queued":
                    holder.release.set()
            else:
                seen.append((event, None))
    assert seen[:3] == [
        ("queued", "Queued (position 1)…"),
        ("reading", "Reading the sources…"),
        ("writing", "Writing the answer…"),
    ]
    assert ("answer", None) in seen
    assert slow.queue.size() == 0


def test_a_client_that_goes_away_stops_its_generation(slow):
    model = slow.generator
    with Server(create_app(slow)) as server, httpx.Client(base_url=server.url) as client:
        with client.stream("POST", "/api/ask?stream=1", json=QUESTION, timeout=20) as response:
            for event, data in events(response):
                if event == "progress" and data["stage"] == "writing":
                    break  # the tab is closed while the answer is written
        assert wait_until(lambda: model.stopped == 1, timeout=10)
        assert model.finished == 0
        assert wait_until(lambda: slow.queue.size() == 0)


def test_a_client_that_goes_away_while_queued_leaves_the_queue(slow):
    holder = Holder(slow.queue)
    with Server(create_app(slow)) as server, httpx.Client(base_url=server.url) as client:
        with client.stream("POST", "/api/ask?stream=1", json=QUESTION, timeout=20) as response:
            for event, data in events(response):
                if event == "progress" and data["stage"] == "queued":
                    break
        # Only the holder's ticket is left, and nothing waits (the two are let go of in turn).
        assert wait_until(lambda: slow.queue.size() == 1 and slow.queue.order() == [])
        holder.release.set()
    assert slow.generator.finished == 0 and slow.generator.stopped == 0


def test_a_client_that_gives_up_on_a_plain_request_stops_its_generation(slow):
    model = slow.generator
    with Server(create_app(slow)) as server, httpx.Client(base_url=server.url) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/api/ask", json=QUESTION, timeout=1.0)  # gone before the answer
        assert wait_until(lambda: model.stopped == 1, timeout=10)
        assert model.finished == 0
        assert wait_until(lambda: slow.queue.size() == 0)
