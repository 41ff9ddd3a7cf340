"""The HTTP API never returns an exception's text: a one-line message with an error id, and
the details (under the same id) in the server's log."""

import logging
import re

from fastapi.testclient import TestClient

from kbqa.serve import create_app
from web.conftest import LOCAL


def _explode(*args, **kwargs):
    raise RuntimeError("cannot open /srv/kbqa/secret.db: password hunter2")


def test_an_unexpected_failure_is_an_id_not_its_text(core, caplog):
    core.ask = _explode
    client = TestClient(
        create_app(core),
        base_url="http://127.0.0.1:8080",
        client=LOCAL,
        raise_server_exceptions=False,
    )
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/ask", json={"question": "what port does tracker use?"})
    assert response.status_code == 500
    message = response.json()["error"]["message"]
    assert "hunter2" not in response.text and "/srv" not in response.text
    failure = re.search(r"internal error ([0-9a-f]{8})", message).group(1)
    assert any(failure in r.getMessage() for r in caplog.records)
    assert "hunter2" in caplog.text  # the details are in the log


def test_a_failure_while_streaming_is_an_id_too(core, caplog):
    def failing_stream(*args, **kwargs):
        yield "A first sentence [1]."
        _explode()

    core.ask_stream = failing_stream
    client = TestClient(create_app(core), base_url="http://127.0.0.1:8080", client=LOCAL)
    with caplog.at_level(logging.ERROR):
        response = client.post(
            "/api/ask", json={"question": "what port does tracker use?", "stream": True}
        )
    assert "event: error" in response.text and "hunter2" not in response.text
    failure = re.search(r"internal error ([0-9a-f]{8})", response.text).group(1)
    assert any(failure in r.getMessage() for r in caplog.records)
