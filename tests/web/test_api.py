"""The HTTP API's contract: status codes, JSON shapes, SSE framing, limits, tokens and audiences."""

import json

import pytest
from sqlalchemy import select

from kbqa.store import FeedbackRow

QUESTION = "when do the larkdb backups run nightly?"
PRIVATE = "when are the lk-breakglass break-glass credentials rotated next?"


def events(text: str) -> list[tuple[str, dict]]:
    """(event, data) of each server-sent event; every block must be well formed."""
    out = []
    assert text.endswith("\n\n")
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ") and len(lines) == 2
        out.append((lines[0][7:], json.loads(lines[1][6:])))
    return out


def test_ask_returns_the_json_of_kbqa_ask(local):
    response = local.post("/api/ask", json={"question": QUESTION, "k": 2})
    assert response.status_code == 200
    data = response.json()
    assert set(data) >= {"question", "answer", "abstained", "mode", "citations", "hits", "timings"}
    assert "02:00 UTC" in data["answer"] and "[1]" in data["answer"]
    assert len(data["hits"]) == 2 and data["citations"][0]["n"] == 1
    assert set(data["hits"][0]) == {
        *("chunk_id", "uri", "title", "heading", "link", "text", "score", "updated_at", "author")
    }
    assert data["hits"][0]["updated_at"].endswith("+00:00")  # ISO 8601, in UTC


def test_streamed_answer_is_sentences_then_sources_then_the_answer(local):
    response = local.post("/api/ask?stream=1", json={"question": QUESTION})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = events(response.text)
    kinds = [kind for kind, _ in stream]
    assert kinds[-2:] == ["sources", "answer"] and set(kinds[2:-2]) == {"sentence"}
    # Before the answer, where it is: the model reads the sources, then writes.
    assert [data["stage"] for _, data in stream[:2]] == ["reading", "writing"]
    sentences = " ".join(data["text"] for kind, data in stream if kind == "sentence")
    answer = stream[-1][1]
    assert sentences == answer["answer"]
    cited = stream[-2][1]["citations"][0]
    assert cited["n"] == 1 and cited["where"].endswith("runbooks/db.md")
    assert cited["age"] == "today" and cited["label"] == "Database runbook › Backups"


def test_abstention_says_why(local, core):
    core.settings = core.settings.replace(min_hit_score=0.99)
    stream = events(local.post("/api/ask?stream=1", json={"question": "zebra safari?"}).text)
    answer = stream[-1][1]
    # In plain words with a next step; the answerer's own reason (the signal, its value and
    # the threshold) stays in `reason`.
    assert answer["abstained"] and "close enough" in answer["why"]
    assert "min_hit_score 0.99" in answer["reason"]


@pytest.mark.parametrize(
    "payload, status, needle",
    [
        ({"question": ""}, 400, "question: must not be empty"),
        ({"question": "x" * 301}, 400, "longer than 300 characters"),
        ({}, 400, "question: Field required"),
        ({"q": "ok?"}, 400, "question: Field required (unknown field 'q')"),
        ({"question": "ok?", "k": 99}, 400, "k: "),
        ({"question": "ok?", "colour": "red"}, 400, "colour: Extra inputs"),
    ],
)
def test_bad_requests_are_a_clear_400(local, payload, status, needle):
    response = local.post("/api/ask", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"


def test_malformed_json_and_oversized_bodies_are_refused(local):
    response = local.post(
        "/api/ask", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("the request body is not valid JSON: send a JSON object such as")
    big = local.post("/api/ask", json={"question": "x", "sources": ["y" * 5000]})
    assert big.status_code == 413 and "over 4096 bytes" in big.json()["error"]["message"]

    def chunked():  # no Content-Length: counted as it arrives
        yield b'{"question": "'
        for _ in range(10):
            yield b"z" * 1000
        yield b'"}'

    response = local.post(
        "/api/ask", content=chunked(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_an_empty_knowledge_base_is_a_503(tmp_path):
    from fastapi.testclient import TestClient

    from kbqa.app import KnowledgeBase
    from kbqa.retrieval.embedder import HashEmbedder
    from kbqa.serve import create_app
    from kbqa.settings import Settings

    kb = KnowledgeBase(Settings(home=tmp_path / "empty"), embedder=HashEmbedder())
    client = TestClient(create_app(kb), base_url="http://localhost", client=("127.0.0.1", 1))
    for path in ("/api/ask", "/api/ask?stream=1"):
        response = client.post(path, json={"question": "anything?"})
        assert response.status_code == 503
        assert "run `kbqa ingest PATH` first" in response.json()["error"]["message"]


def test_feedback_is_stored(local, core):
    response = local.post(
        "/api/feedback",
        json={"value": "up", "question": QUESTION, "answer": "At 02:00 [1].", "citations": ["a"]},
    )
    assert response.status_code == 201 and response.json()["value"] == 1
    with core.store.session() as s:
        row = s.scalars(select(FeedbackRow)).one()
    assert (row.value, row.user, row.channel, row.question) == (1, "local", "web", QUESTION)
    assert (
        local.post("/api/feedback", json={"value": 0, "question": "q", "answer": "a"}).status_code
        == 400
    )


def test_status_and_documents(local):
    status = local.get("/api/status").json()
    assert status["documents"] > 3 and status["snapshot"]["chunks"] == status["chunks"]
    page = local.get("/api/documents", params={"limit": 2}).json()
    assert page["total"] == status["documents"] and len(page["documents"]) == 2
    slack = local.get("/api/documents", params={"kind": "slack", "limit": 200}).json()
    assert slack["documents"] and all(d["kind"] == "slack" for d in slack["documents"])
    # A thread's own time (its last message), not when kbqa stored it, is what "Updated" shows.
    assert all(d["source_updated_at"] < d["updated_at"] for d in slack["documents"])
    found = local.get("/api/documents", params={"q": "runbooks/db"}).json()
    assert [d["title"] for d in found["documents"]] == ["Database runbook"]
    assert local.get("/api/documents", params={"limit": 0}).status_code == 400


def test_no_token_is_a_401_off_this_machine(remote, local):
    for method, path in (("post", "/api/ask"), ("get", "/api/status"), ("get", "/api/documents")):
        body = {"question": "q?"} if method == "post" else None
        response = remote.request(method.upper(), path, json=body)
        assert response.status_code == 401, path
        assert "API token is needed" in response.json()["error"]["message"]
        assert response.headers["www-authenticate"] == "Bearer"
    bad = remote.get("/api/status", headers={"Authorization": "Bearer kbqa_nope"})
    assert bad.status_code == 401 and "not valid" in bad.json()["error"]["message"]
    # From this machine but addressed by another name (DNS rebinding): a token is needed too.
    assert local.get("/api/status", headers={"host": "evil.example"}).status_code == 401


def test_loopback_needs_a_token_when_settings_say_so(core, local):
    core.settings = core.settings.replace(allow_loopback_without_token=False)
    assert local.get("/api/status").status_code == 401


def test_a_token_restricted_to_a_channel_never_gets_other_sources(core, remote):
    secret, _ = core.create_token("eng", ["#eng-help"])
    auth = {"Authorization": f"Bearer {secret}"}
    questions = [PRIVATE, QUESTION, "what batch size does the tracker use for GPS pings?"]
    for question in questions:
        data = remote.post("/api/ask", json={"question": question, "k": 6}, headers=auth).json()
        for hit in data["hits"]:
            assert "/archives/C05ENGHELP/" in hit["uri"], hit["uri"]  # #eng-help's threads only
    docs = remote.get("/api/documents", params={"limit": 200}, headers=auth).json()["documents"]
    assert docs and {d["channel"] for d in docs} == {"eng-help"}
    status = remote.get("/api/status", headers=auth).json()
    assert "database" not in status and "home" not in status  # not an admin
    assert "sources" not in status  # the roots are paths and channel names
    assert remote.get("/admin", headers=auth).status_code == 403


def test_an_abstention_under_a_restricted_token_says_what_the_token_searches(core, remote):
    core.settings = core.settings.replace(min_hit_score=0.99)
    secret, _ = core.create_token("eng", ["#eng-help"])
    auth = {"Authorization": f"Bearer {secret}"}
    data = remote.post("/api/ask", json={"question": QUESTION}, headers=auth).json()
    assert data["abstained"] and data["why"].endswith("; this token searches only #eng-help")
    stream = events(
        remote.post("/api/ask?stream=1", json={"question": QUESTION}, headers=auth).text
    )
    assert stream[-1][1]["why"] == data["why"]
    # The OpenAI endpoint's reply ends with the same why, whole and streamed.
    chat = {"messages": [{"role": "user", "content": QUESTION}]}
    reply = remote.post("/v1/chat/completions", json=chat, headers=auth).json()
    content = reply["choices"][0]["message"]["content"]
    assert content.endswith(f"_({data['why']})_")
    streamed = remote.post("/v1/chat/completions", json={**chat, "stream": True}, headers=auth)
    assert f"({data['why']})" in streamed.text.replace("\\n", "\n")
    # A token that sees everything is told nothing of the kind.
    secret, _ = core.create_token("all", [])
    auth = {"Authorization": f"Bearer {secret}"}
    data = remote.post("/api/ask", json={"question": QUESTION}, headers=auth).json()
    assert data["abstained"] and "this token" not in data["why"]


def test_an_unrestricted_token_still_never_sees_private_channels(core, remote):
    secret, _ = core.create_token("all", [])
    auth = {"Authorization": f"Bearer {secret}"}
    data = remote.post("/api/ask", json={"question": PRIVATE, "k": 10}, headers=auth).json()
    assert data["hits"] and all("G05SECPRIV" not in h["uri"] for h in data["hits"])
    # …unless a pattern names the private channel itself.
    secret, _ = core.create_token("sec", ["#sec-private"])
    data = remote.post(
        "/api/ask", json={"question": PRIVATE}, headers={"Authorization": f"Bearer {secret}"}
    ).json()
    assert any("G05SECPRIV" in h["uri"] for h in data["hits"])


def test_a_revoked_token_stops_working(core, remote):
    secret, _ = core.create_token("temp", [])
    auth = {"Authorization": f"Bearer {secret}"}
    assert remote.get("/api/status", headers=auth).status_code == 200
    core.revoke_token("temp")
    assert remote.get("/api/status", headers=auth).status_code == 401
    # Only the hash is stored.
    from kbqa.store import TokenRow

    with core.store.session() as s:
        row = s.scalars(select(TokenRow)).one()
    assert secret not in (row.digest, row.prefix) and row.prefix == secret[:9]


def test_admin_page_lists_sources_runs_and_failed_files(local, core):
    page = local.get("/admin")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "broken.pdf" in page.text and "not a PDF file" in page.text
    assert "slack-export" in page.text and "Database runbook" in page.text
    secret, _ = core.create_token("ops", [], admin=True)
    from fastapi.testclient import TestClient

    from kbqa.serve import create_app

    remote = TestClient(create_app(core), base_url="http://kb.example.com", client=("10.1.2.3", 1))
    remote.cookies.set("kbqa_token", secret)  # the page keeps the token in a cookie
    assert "broken.pdf" in remote.get("/admin").text


def test_the_page_is_served_with_its_script(local):
    page = local.get("/")
    assert page.status_code == 200 and '<form id="ask"' in page.text
    assert local.get("/static/app.js").status_code == 200
    # An icon of its own: the browser asked for /favicon.ico and got a 404 (page walkthrough).
    assert '<link rel="icon" href="/static/favicon.svg"' in page.text
    icon = local.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert local.get("/no/such/page").json()["error"]["type"] == "not_found_error"
