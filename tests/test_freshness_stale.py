"""The stale report: sources older than stale_after_days, the most cited by rated answers
first, and the pairs of sources that disagree; printed by `kbqa stale` and shown on /admin."""

import importlib.util
import json
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import kbqa.cli
from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.clock import parse_time
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.serve import create_app
from kbqa.settings import Settings
from kbqa.stale import conflicts, stale_sources

_spec = importlib.util.spec_from_file_location(
    "gitrepo", ROOT / "tests" / "data" / "freshness" / "gitrepo.py"
)
gitrepo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gitrepo)
SEPTEMBER = parse_time("2024-09-01T00:00:00Z")  # 180 days after 2024-03-05


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> KnowledgeBase:
    tmp = tmp_path_factory.mktemp("stale")
    repo, export = gitrepo.build(tmp)
    settings = Settings(home=tmp / "home", slack_workspace="quillhaven", embedding_model="hash")
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest([repo, export])
    wiki = str((repo / "wiki-export" / "ledger-runbook.md").resolve())
    kb.feedback(1, "db port?", "5432 [1]", [{"uri": wiki}])
    kb.feedback(-1, "db host?", "pg-main-01 [1]", [{"uri": wiki}])
    return kb


def test_the_most_cited_stale_source_comes_first(kb: KnowledgeBase):
    found = stale_sources(kb, now=SEPTEMBER)
    first = found[0]
    assert first.uri.endswith("wiki-export/ledger-runbook.md")
    assert (first.cited, first.liked, first.disliked) == (2, 1, 1)
    assert first.updated_at == "2024-01-10T09:00:00+00:00" and first.author == "Ana Lima"
    # The revised runbook (2024-03-08) is not stale yet; the January documents are.
    uris = [s.uri for s in found]
    assert not any(u.endswith("runbooks/ledger.md") for u in uris)
    assert any(u.endswith("docs/platform-facts.md") for u in uris)


def test_the_revised_runbook_and_its_old_copy_are_a_pair_that_disagrees(kb: KnowledgeBase):
    pairs = conflicts(kb)
    pair = next(p for p in pairs if p.newer_uri.endswith("runbooks/ledger.md"))
    assert pair.older_uri.endswith("wiki-export/ledger-runbook.md")
    assert pair.newer_updated_at.startswith("2024-03-08") and pair.older_updated_at < "2024-02"


def stale(kb: KnowledgeBase, days: int, *options: str):
    """`kbqa stale` on the fixture's home with stale_after_days = days."""
    env = {"KBQA_EMBEDDING_MODEL": "hash", "KBQA_STALE_AFTER_DAYS": str(days)}
    home = ["--home", str(kb.settings.home)]
    result = CliRunner().invoke(kbqa.cli.cli, [*home, "stale", *options], env=env)
    assert result.exit_code == 0, result.output
    return result


def test_kbqa_stale_prints_both_lists(kb: KnowledgeBase):
    result = stale(kb, 30)
    assert "Not updated for 30 days or more" in result.output
    assert "cited by 2 rated answers (👍 1 👎 1)" in result.output
    assert "Sources that disagree (" in result.output and "pg-main-02.internal" in result.output
    data = json.loads(stale(kb, 30, "--json").output)
    assert data["stale"][0]["cited"] == 2 and data["disagree"]


def test_kbqa_stale_with_nothing_stale_says_how_old_the_oldest_source_is(kb: KnowledgeBase):
    result = stale(kb, 100000)
    assert "Not updated for 100000 days or more (0):" in result.output
    days = (time.time() - parse_time("2024-01-10T09:00:00Z")) // 86400  # the January runbook
    assert f"none: the oldest source was updated {days:.0f} days ago" in result.output


def test_the_admin_page_has_a_stale_block_with_links(kb: KnowledgeBase):
    client = TestClient(create_app(kb), base_url="http://127.0.0.1", client=("127.0.0.1", 1))
    page = client.get("/admin").text
    assert 'id="h-stale"' in page and "Sources that disagree" in page
    assert "wiki-export/ledger-runbook.md" in page and "(1 helpful, 1 not helpful)" in page
    assert 'href="https://quillhaven.slack.com/archives/' in page  # a stale thread, linked
    assert "pg-main-01.internal" in page and "pg-main-02.internal" in page
