"""The Slack bot's fixtures: a local Slack Web API, a knowledge base of a runbook and the
example Slack export, and the real Bolt app over it."""

from pathlib import Path

import pytest
from slack_sdk import WebClient

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.integrations.slack import create_app
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from support import PRIVATE, PUBLIC, SECRET, MockSlackApi


@pytest.fixture
def api():
    with MockSlackApi() as server:
        server.responses["conversations.info"] = lambda params: {
            "ok": True,
            "channel": {
                "id": params["channel"],
                "name": {PUBLIC: "eng-help", PRIVATE: "sec-private"}.get(
                    params["channel"], "general"
                ),
            },
        }
        yield server


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "runbook.md").write_text(
        "# Database runbook\n\n## Rotating credentials\n\n"
        "Run vault write database/rotate-role/staging-app to rotate the staging password.\n\n"
        "## Announcements\n\n<!channel> the maintenance window for the staging database rotation "
        "is Sunday; ping <@U0ALICE> and <!here> with questions.\n"
    )
    settings = Settings(
        home=tmp_path / "home",
        slack_workspace="larkspur",
        slack_signing_secret=SECRET,
        min_hit_score=0.05,
        min_confidence=0.0,
        answer_style="free",
    )
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    kb.ingest([docs, ROOT / "examples" / "slack-export"])
    return kb


@pytest.fixture
def app(kb, api):
    client = WebClient(token="xoxb-test", base_url=api.url)
    return create_app(kb, client=client)
