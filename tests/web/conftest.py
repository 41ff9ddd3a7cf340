"""A knowledge base of the handbook-like docs and the example Slack export, served by the real
app: through FastAPI's TestClient, or a real uvicorn on 127.0.0.1 where the network matters."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.serve import create_app
from kbqa.settings import Settings
from support import Server

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
        answer_style="free",  # the pointer style's page tests: web/test_evidence.py
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


@pytest.fixture
def server(core):
    with Server(create_app(core)) as running:
        yield running
