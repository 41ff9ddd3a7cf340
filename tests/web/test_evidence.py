"""A pointed answer (evidence units quoted by kbqa) through the HTTP API's stream, the OpenAI
endpoint (plain and streamed) and `kbqa ask --server`."""

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kbqa.cli import cli
from kbqa.serve import create_app
from web.conftest import LOCAL, Server
from web.pointing import Pointing
from web.test_api import events

QUESTION = "which port does the tracker service listen on?"
UNITS = [("port 7300", "port 7300"), ("billing service", "")]
TRACKER = "The tracker service listens on port 7300."
BILLING = "The billing service listens on 7400."


@pytest.fixture
def pointing(core) -> Pointing:
    return Pointing(core, UNITS)


@pytest.fixture
def client(pointing) -> TestClient:
    return TestClient(create_app(pointing), base_url="http://127.0.0.1:8080", client=LOCAL)


def test_the_stream_sends_an_evidence_event_per_unit_before_the_answer(client):
    stream = events(client.post("/api/ask?stream=1", json={"question": QUESTION}).text)
    stream = [(kind, data) for kind, data in stream if kind != "progress"]  # test_queue_api.py
    assert [kind for kind, _ in stream] == ["evidence", "evidence", "sources", "answer"]
    first, second = stream[0][1], stream[1][1]
    assert first == {
        "n": 1,
        "text": TRACKER,
        "span": "port 7300",
        "before": "",
        "after": "",
        "probability": 1.0,
        "quote": True,
        "html": f"<p>{TRACKER}</p>",  # for the page, rendered and sanitised (render/page.py)
    }
    assert second == {
        "n": 1,
        "text": BILLING,
        "span": "",
        "before": "",
        "after": "",
        "probability": 1.0,
        "quote": True,
        "html": f"<p>{BILLING}</p>",
    }
    answer = stream[-1][1]
    assert answer["mode"] == "pointed" and answer["span"] == "port 7300"
    assert answer["evidence"] == [
        {k: v for k, v in e.items() if k != "quote"} for e in (first, second)
    ]
    cited = stream[-2][1]["citations"][0]
    assert TRACKER in cited["text"] and cited["where"].endswith("ports.md")
    plain = client.post("/api/ask", json={"question": QUESTION}).json()
    assert plain["evidence"] == answer["evidence"]


def test_the_openai_endpoint_quotes_the_units_in_markdown(client):
    chat = {"messages": [{"role": "user", "content": QUESTION}]}
    reply = client.post("/v1/chat/completions", json=chat).json()
    content = reply["choices"][0]["message"]["content"]
    marked = TRACKER.replace("port 7300", "**port 7300**")
    assert content.startswith(f"> {marked} [1]\n\n> {BILLING} [1]\n\nSources:\n")
    assert "[1] Services — " in content
    assert reply["kbqa"]["evidence"][0]["span"] == "port 7300"
    streamed = client.post("/v1/chat/completions", json={**chat, "stream": True}).text
    chunks = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == content
    assert chunks[-1]["kbqa"]["evidence"] == reply["kbqa"]["evidence"]


def test_kbqa_ask_server_shows_the_evidence_it_gets_back(pointing, core, tmp_path):
    with Server(create_app(pointing)) as server:
        env = {"KBQA_HOME": str(tmp_path / "client-home")}
        result = CliRunner().invoke(cli, ["ask", "--server", server.url, QUESTION], env=env)
        as_json = CliRunner().invoke(
            cli, ["ask", "--server", server.url, "--json", QUESTION], env=env
        )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [f"> {TRACKER} [1]", f"> {BILLING} [1]"]
    assert lines[2] == "" and lines[3].startswith("[1] Services — ")
    assert {k: v for k, v in json.loads(as_json.output)["evidence"][1].items() if k != "html"} == {
        "n": 1,
        "text": BILLING,
        "span": "",
        "before": "",
        "after": "",
        "probability": 1.0,
    }


def test_answers_without_evidence_stream_as_before(local):
    stream = events(local.post("/api/ask?stream=1", json={"question": QUESTION}).text)
    kinds = [kind for kind, _ in stream]
    assert "evidence" not in kinds and kinds[-2:] == ["sources", "answer"]
    assert stream[-1][1]["evidence"] == []
