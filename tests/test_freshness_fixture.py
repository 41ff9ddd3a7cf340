"""The freshness fixture (tests/data/freshness): built as documented, with what the issue asks
for — at least 30 superseded facts and at least 10 control pairs, each with its question."""

import importlib.util
from pathlib import Path

from conftest import ROOT
from kbqa.ingest.slack_export import read_export
from kbqa.ingest.times import GitTimes, file_time

_spec = importlib.util.spec_from_file_location(
    "gitrepo", ROOT / "tests" / "data" / "freshness" / "gitrepo.py"
)
gitrepo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gitrepo)


def test_the_fixture_has_enough_superseded_facts_and_controls():
    data = gitrepo.questions()
    kinds = [q["kind"] for q in data["questions"]]
    assert len([k for k in kinds if k != "control"]) >= 30 and kinds.count("control") >= 10
    assert {"runbook", "thread", "announcement"} <= set(kinds)
    assert all(q["question"].endswith("?") and q["current"] for q in data["questions"])


def test_the_revised_runbook_is_newer_than_its_lingering_wiki_copy(tmp_path: Path):
    repo, export = gitrepo.build(tmp_path)
    git = GitTimes.open(repo)
    times = {
        name: file_time(repo / name, (repo / name).read_bytes(), 0, git)
        for name in ("runbooks/ledger.md", "wiki-export/ledger-runbook.md")
    }
    assert times["runbooks/ledger.md"]["updated_at"] == "2024-03-08T10:00:00+00:00"
    assert times["runbooks/ledger.md"]["author"] == "Bo Chen"
    assert times["wiki-export/ledger-runbook.md"]["updated_at"] == "2024-01-10T09:00:00+00:00"
    documents, problems = read_export(export, "quillhaven", False, 1 << 20)
    assert problems == [] and len(documents) >= 16
