"""A knowledge base of the handbook-like docs and the example Slack export, served by the real
app: through FastAPI's TestClient, or a real uvicorn on 127.0.0.1 where the network matters."""

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.serve import create_app
from kbqa.settings import Settings

LOCAL = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.9", 50000)


@pytest.fixture
def core(tmp_path: Path, docs: Path) -> KnowledgeBase:
    (docs / "broken.pdf").write_bytes(b"not a pdf")
    settings = Settings(
        home=tmp_path / "home",
        slack_workspace="larkspur",
        min_hit_score=0.05,
        min_confidence=0.0,
        max_question_chars=300,
        max_request_bytes=4096,
    )
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    kb.ingest([docs, ROOT / "examples" / "slack-export"])
    return kb


@pytest.fixture
def local(core) -> TestClient:
    """A client on this machine (no token needed)."""
    return TestClient(create_app(core), base_url="http://127.0.0.1:8080", client=LOCAL)


@pytest.fixture
def remote(core) -> TestClient:
    """A client on another machine (a token is needed)."""
    return TestClient(create_app(core), base_url="http://kb.example.com", client=REMOTE)


class Server:
    """The app in a real uvicorn on 127.0.0.1 (a free port), in a thread."""

    def __init__(self, app):
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def server(core):
    with Server(create_app(core)) as running:
        yield running
