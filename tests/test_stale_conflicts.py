"""`kbqa stale`'s sources that disagree: each sentence of a passage is compared, so a passage
that holds many values still shows the one that changed, and every cross-source disagreement
of the freshness fixture is listed (docs/freshness.md)."""

import importlib.util
import json

import pytest

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.stale import Conflict, conflicts

FIXTURE = ROOT / "tests" / "data" / "freshness"
_spec = importlib.util.spec_from_file_location("gitrepo", FIXTURE / "gitrepo.py")
gitrepo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gitrepo)

POLICY = """---
updated: 2024-01-10
---
# Deploy policy

Deploys go out at 09:00 on weekdays from #deploys. Friday deploys need approval from Dana
Reyes. Roll back with `deployctl rollback --last`. A deploy freeze runs from 18 Dec to 2 Jan.
"""
NEWS = """---
updated: 2024-05-02
---
# Release news

Heads up: deploys now go out at 10:30 on weekdays from #deploys.
"""


def test_a_passage_of_many_values_shows_the_one_that_changed(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "deploy-policy.md").write_text(POLICY)
    (tmp_path / "docs" / "release-news.md").write_text(NEWS)
    kb = KnowledgeBase(Settings(home=tmp_path / "home"), embedder=HashEmbedder())
    kb.ingest([tmp_path / "docs"])
    [pair] = conflicts(kb)
    assert pair.newer_uri.endswith("release-news.md") and "10:30" in pair.newer_sentence
    assert pair.older_uri.endswith("deploy-policy.md")
    assert pair.older_sentence == "Deploys go out at 09:00 on weekdays from #deploys."


@pytest.fixture(scope="module")
def fixture_kb(tmp_path_factory) -> KnowledgeBase:
    tmp = tmp_path_factory.mktemp("conflicts")
    repo, export = gitrepo.build(tmp)
    settings = Settings(home=tmp / "home", slack_workspace="quillhaven")
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest([repo, export])
    return kb


def test_every_cross_source_disagreement_of_the_fixture_is_listed(fixture_kb: KnowledgeBase):
    questions = json.loads((FIXTURE / "questions.json").read_text())["questions"]
    changed = [q for q in questions if q["kind"] in ("runbook", "announcement")]  # 22 + 4
    pairs = conflicts(fixture_kb, limit=100)
    assert [q["id"] for q in changed if not any(_is(q, p) for p in pairs)] == []
    # A pair is one changed fact, listed once: "runs on Java 21" is paired with "Java 17",
    # not with "runs in region us-east-1", which opens alike. The one other pair is a control
    # whose thing is named by a value ("Q2 code freeze" / "Q1 code freeze"): with no question
    # to say which quarter is asked about, the two read as one thing.
    others = [p for p in pairs if not any(_is(q, p) for q in changed)]
    assert len(pairs) == len(changed) + 1
    assert [p.older_sentence for p in others] == ["The Q2 code freeze begins on 2024-06-20."]


def _is(question: dict, pair: Conflict) -> bool:
    """Whether the pair is the question's changed fact: its older value, then its current."""
    return (
        question["older"].lower() in pair.older_sentence.lower()
        and question["current"].lower() in pair.newer_sentence.lower()
    )
