"""Disagreement across sources: where two shown passages give different values for the same
thing, the answer gives the newer one and says so in one line, citing both; where the newer
source is about something else, the older one is used and nothing is said."""

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.assistant.freshness import annotate, disagree, find, shown_values, values
from kbqa.render import markdown, page, slack
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.types import Answer, Citation, Hit


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gitrepo = _load("gitrepo", ROOT / "tests" / "data" / "freshness" / "gitrepo.py")
bench = _load("freshness_bench", ROOT / "benchmarks" / "freshness.py")
QUESTIONS = {q["id"]: q for q in gitrepo.questions()["questions"]}


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> KnowledgeBase:
    tmp = tmp_path_factory.mktemp("fresh")
    repo, export = gitrepo.build(tmp)
    settings = Settings(
        home=tmp / "home", slack_workspace="quillhaven", min_hit_score=0.05, min_confidence=0.0
    )
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=bench.OverlapPointer())
    kb.ingest([repo, export])
    return kb


def test_a_revised_runbook_line_is_a_disagreement_and_a_control_pair_is_not():
    old = "Applications connect to the ledger database on port 5432."
    new = "Applications connect to the ledger database on port 6432."
    assert disagree(QUESTIONS["rb02"]["question"], old, new) == ("5432",)
    command = disagree(
        "How do you restart the ledger API?",
        "Restart the ledger API with systemctl restart ledger-api.",
        "Restart the ledger API with kubectl rollout restart deploy/ledger-api.",
    )
    assert command == ("Restart the ledger API with systemctl restart ledger-api",)
    platform = (ROOT / "tests/data/freshness/repo/v1/platform-facts.md").read_text()
    posted = json.loads((ROOT / "tests/data/freshness/slack/eng/2024-03-15.json").read_text())
    for q in [q for q in QUESTIONS.values() if q["kind"] == "control"]:
        older = next(s for s in platform.splitlines() if q["current"] in s)
        newer = next(m["text"] for m in posted if q["newer_other"] in m["text"])
        assert disagree(q["question"], older, newer) == (), q["id"]


def test_values_are_shown_as_people_write_them():
    assert shown_values(("35", "35 day")) == "35 days"
    assert shown_values(("#ops", "ops")) == "#ops"
    assert shown_values(values("Expenses up to $500 need no approval.")) == "$500"


# The examples' deploy policy (handbook, newer) and the #deploys thread (older) say the same.
FREEZE_QUESTION = "Who approves production deploys during the freeze?"
FREEZE_THREAD = "Priya Raghunathan: No, the freeze (18 Nov – 6 Dec) is for SEV1/SEV2 fixes only."
FREEZE_POLICY = (
    "Every year there is a peak-season freeze from 18 November to 6 December, when only fixes "
    "for SEV1 and SEV2 incidents may ship."
)


def _freeze_hits(policy: str) -> list[Hit]:
    """The handbook's policy (2026-11-28) first, the #deploys thread (2026-11-10) second."""
    thread = {"updated_at": "2026-11-10T00:00:00+00:00", "kind": "slack", "channel": "deploys"}
    return [
        Hit(1, 1.0, policy, "", "runbooks/deploys.html", "Deploy Runbook",
            {"updated_at": "2026-11-28T00:00:00+00:00"}),
        Hit(2, 1.0, FREEZE_THREAD, "", "https://larkspur.slack.com/archives/C05/p1", "#deploys",
            thread),
    ]  # fmt: skip


def test_the_same_values_written_another_way_are_no_disagreement():
    assert values(FREEZE_THREAD) == {"18 nov", "6 dec", "sev1/sev2"}  # no "sev", "nov" alone
    assert disagree(FREEZE_QUESTION, FREEZE_THREAD, FREEZE_POLICY) == ()
    assert find(FREEZE_QUESTION, _freeze_hits(FREEZE_POLICY)) == []
    for older, newer in [
        ("The freeze ends on Dec 6.", "The freeze ends on 6th December."),
        ("Deploys are allowed Mon/Tue only.", "Deploys are allowed Monday and Tuesday only."),
        ("The freeze is for SEV1 and SEV2 fixes.", "The freeze is for SEV2/SEV1 fixes."),
    ]:
        assert disagree("When are deploys allowed during the freeze?", older, newer) == (), older


def test_dates_whose_months_differ_still_disagree_and_read_as_dates():
    moved = FREEZE_POLICY.replace("6 December", "6 January")
    assert disagree(FREEZE_QUESTION, FREEZE_THREAD, moved) == ("6 dec",)
    assert shown_values(("6 dec",)) == "6 Dec"
    hits = _freeze_hits(moved)
    [found] = find(FREEZE_QUESTION, hits)
    assert found.older_sentence == FREEZE_THREAD and found.older_values == ("6 dec",)
    answer = Answer(FREEZE_QUESTION, f"{moved} [1]", False, (Citation(1, hits[0]),), tuple(hits))
    assert annotate(answer, [found]).updated == (
        "updated 2026-11-28; earlier: 6 Dec in #deploys, 2026-11-10 [2]"
    )
    # A list that really changed is still one, its value shown as written.
    wider = FREEZE_POLICY.replace("SEV1 and SEV2", "SEV1 and SEV3")
    assert disagree(FREEZE_QUESTION, FREEZE_THREAD, wider) == ("sev1/sev2",)


def test_the_answer_uses_the_newer_source_and_says_what_it_replaced(kb: KnowledgeBase):
    answer = kb.ask(QUESTIONS["rb02"]["question"])
    assert "6432" in answer.text and "5432" not in answer.text
    assert answer.updated == (
        "updated 2024-03-08; earlier: 5432 in wiki-export/ledger-runbook.md, 2024-01-10 [2]"
    )
    uris = [c.hit.uri for c in answer.citations]
    assert uris[0].endswith("runbooks/ledger.md") and uris[1].endswith("ledger-runbook.md")
    assert answer.to_dict()["updated"] == answer.updated
    # Every medium shows the line: the terminal and Slack with the why, Markdown before sources.
    assert answer.updated in answer.explanation()
    assert f"_{answer.updated}_\n\nSources:" in markdown.markdown(answer)
    _, blocks = slack.answer_blocks(answer)
    assert any(
        "earlier: 5432" in e["text"]
        for b in blocks
        if b["type"] == "context"
        for e in b["elements"]
    )
    assert page.answer_data(answer)["updated"] == answer.updated


def test_a_thread_that_corrected_itself_says_so(kb: KnowledgeBase):
    answer = kb.ask(QUESTIONS["th01"]["question"])
    assert "6433" in answer.text
    assert answer.updated.startswith("corrected in the thread 2024-03-01; earlier: 5433 (Cy Park")


def test_an_older_source_still_right_is_used_without_a_note(kb: KnowledgeBase):
    for qid in ("c01", "c02", "c08"):
        answer = kb.ask(QUESTIONS[qid]["question"])
        assert QUESTIONS[qid]["current"] in answer.text and answer.updated == "", qid


def test_recency_breaks_ties_only_when_set(kb: KnowledgeBase):
    from kbqa.evals.retrieval import configured

    question = QUESTIONS["rb02"]["question"]
    plain = kb.retriever.search(question, 6)
    with configured(kb.retriever, {"recency_tie": 10.0}) as retriever:  # all one tie
        newest = retriever.search(question, 6)
    times = [h.updated_at for h in newest]
    assert times == sorted(times, reverse=True)
    assert [h.updated_at for h in plain] != times  # off: the fused order, not the newest
