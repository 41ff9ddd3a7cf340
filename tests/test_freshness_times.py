"""Every document knows its own time: a file's last git commit (else its front matter's
`updated:`, else its mtime), a Slack thread's newest message or edit, a connector's own
`updated_at`; stored per document, carried on each Hit and shown as an age on every citation
in every interface (CLI, page, API JSON, OpenAI endpoint, Slack)."""

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

import kbqa.cli
from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.clock import iso
from kbqa.ingest.slack import Conversation, build_documents
from kbqa.ingest.sources import documents_source
from kbqa.ingest.times import GitTimes, file_time
from kbqa.render import markdown, page, slack, terminal
from kbqa.serve import create_app
from kbqa.store import DocumentRow
from kbqa.types import Chunk, Document

_spec = importlib.util.spec_from_file_location(
    "gitrepo", ROOT / "tests" / "data" / "freshness" / "gitrepo.py"
)
gitrepo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gitrepo)

COMMITTED = 1_709_892_000.0  # 2024-03-08T10:00:00Z
QUESTION = "which port does the tracker service listen on?"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "wiki"
    gitrepo.commit(
        root,
        {"ports.md": "# Services\n\nThe tracker service listens on port 7300.\n"},
        COMMITTED,
        "Ana Lima",
        "ports",
    )
    return root


@pytest.fixture
def ingested(kb: KnowledgeBase, repo: Path) -> KnowledgeBase:
    kb.ingest([repo])
    return kb


def test_a_committed_file_has_its_last_commits_time_and_author(repo: Path):
    git = GitTimes.open(repo)
    path = repo / "ports.md"
    assert file_time(path, path.read_bytes(), time.time(), git) == {
        "updated_at": "2024-03-08T10:00:00+00:00",
        "author": "Ana Lima",
        "time_source": "git",
    }
    # A later commit of that file moves its time; another file's commit does not.
    gitrepo.commit(repo, {"ports.md": "# Services\n\nport 7310\n"}, COMMITTED + 86400, "Bo", "b")
    gitrepo.commit(repo, {"other.md": "# Other\n"}, COMMITTED + 2 * 86400, "Cy", "c")
    git = GitTimes.open(repo)
    assert file_time(path, path.read_bytes(), 0, git)["updated_at"] == iso(COMMITTED + 86400)


def test_a_folders_files_take_the_commits_that_changed_them_there(tmp_path: Path):
    """The walk skips commits that changed nothing under the folder, and dates each file by
    the last commit that changed it, not by a later commit elsewhere or an older one."""
    root, day = tmp_path / "repo", 86_400.0
    gitrepo.commit(root, {"docs/a.md": "# A\n", "docs/b.md": "# B\n"}, COMMITTED, "Ana Lima", "1")
    gitrepo.commit(root, {"other/x.md": "# X\n"}, COMMITTED + day, "Bo Chen", "2")
    gitrepo.commit(root, {"docs/deep/b.md": "# B2\n"}, COMMITTED + 2 * day, "Cy Diaz", "3")
    gitrepo.commit(root, {"docs/b.md": "# B, again\n"}, COMMITTED + 3 * day, "Di Eze", "4")
    gitrepo.commit(root, {"other/x.md": "# X, again\n"}, COMMITTED + 4 * day, "Bo Chen", "5")
    git = GitTimes.open(root / "docs")
    assert git is not None
    dated = {
        name: git.last_change(root / "docs" / name, (root / "docs" / name).read_bytes())
        for name in ("a.md", "b.md", "deep/b.md")
    }
    assert dated == {
        "a.md": (COMMITTED, "Ana Lima"),
        "b.md": (COMMITTED + 3 * day, "Di Eze"),
        "deep/b.md": (COMMITTED + 2 * day, "Cy Diaz"),
    }
    assert git.last_change(root / "other" / "x.md", b"# X, again\n") is None  # not the folder's


def test_parse_threads_open_the_history_once(repo: Path, monkeypatch):
    """Files of one folder loaded by several threads at once share one walk of its history."""
    from concurrent.futures import ThreadPoolExecutor

    from kbqa.ingest import sources

    for n in range(4):
        (repo / f"page{n}.md").write_text(f"# Page {n}\n\nWords.\n")
    opened = []

    def slow_open(start: Path):
        opened.append(start)
        time.sleep(0.2)  # a long history: the other threads arrive while it is walked
        return None

    monkeypatch.setattr(sources.GitTimes, "open", staticmethod(slow_open))
    source = sources.file_source(repo, 1200, 800)
    with ThreadPoolExecutor(4) as threads:
        docs = list(threads.map(lambda item: item.load(item.fingerprint(), {}), source.items))
    assert len(docs) == 5 and len(opened) == 1


def test_an_edited_or_uncommitted_file_falls_back_to_its_mtime(repo: Path):
    path = repo / "ports.md"
    path.write_text("# Services\n\nThe tracker service listens on port 7400.\n")
    os.utime(path, (COMMITTED + 5000, COMMITTED + 5000))
    git = GitTimes.open(repo)
    found = file_time(path, path.read_bytes(), path.stat().st_mtime, git)
    assert found == {"updated_at": iso(COMMITTED + 5000), "time_source": "mtime"}
    loose = repo / "new.md"
    loose.write_text("# New\n")
    assert file_time(loose, loose.read_bytes(), 1.0, git)["time_source"] == "mtime"
    assert GitTimes.open(repo.parent) is None  # not a repository: mtimes


def test_front_matter_updated_wins_over_git_and_mtime(tmp_path: Path):
    path = tmp_path / "page.md"
    path.write_text("---\ntitle: VPN\nupdated: 2023-05-01\nowner: Kim Ito\n---\n# VPN\n")
    assert file_time(path, path.read_bytes(), time.time(), None) == {
        "updated_at": "2023-05-01T00:00:00+00:00",
        "author": "Kim Ito",
        "time_source": "front-matter",
    }


def test_a_slack_threads_time_is_its_newest_message_or_edit():
    base = 1_709_600_000
    messages = [
        {"ts": f"{base}.000100", "user": "U1", "text": "which port?", "reply_count": 1},
        {"ts": f"{base + 60}.000100", "thread_ts": f"{base}.000100", "user": "U2",
         "text": "5432", "edited": {"user": "U2", "ts": f"{base + 7200}.000000"}},
    ]  # fmt: skip
    conversation = Conversation("C1", "eng-help", False)
    [doc], _ = build_documents(conversation, messages, {"U1": "Ana", "U2": "Bo"}, {}, "acme")
    assert doc.metadata["updated_at"] == iso(base + 7200)
    assert doc.metadata["author"] == "Bo" and doc.metadata["time_source"] == "slack"


def test_the_time_and_author_are_stored_and_carried_on_hits(ingested: KnowledgeBase):
    with ingested.store.session() as s:
        row = s.scalars(select(DocumentRow)).one()
    assert row.author == "Ana Lima"
    assert row.source_updated_at.timestamp() == COMMITTED
    answer = ingested.ask(QUESTION)
    hit = answer.citations[0].hit
    assert hit.updated_at == COMMITTED and hit.author == "Ana Lima"
    data = answer.to_dict()
    assert data["citations"][0]["updated_at"] == "2024-03-08T10:00:00+00:00"
    assert all(h["updated_at"] for h in data["hits"])


def test_a_connectors_own_updated_at_and_author_are_kept(kb: KnowledgeBase):
    doc = Document(
        "https://wiki.example.com/page/1",
        "Ports",
        "h1",
        (Chunk("The tracker service listens on port 7300.", "Ports"),),
        metadata={"updated_at": "2024-02-01T09:30:00Z", "author": "Dee"},
    )
    kb.index_sources([documents_source("wiki", "confluence", [doc], True)])
    with kb.store.session() as s:
        row = s.scalars(select(DocumentRow)).one()
    assert row.author == "Dee" and row.source_updated_at.isoformat().startswith("2024-02-01T09:30")
    hit = kb.ask(QUESTION).citations[0].hit
    assert iso(hit.updated_at) == "2024-02-01T09:30:00+00:00" and hit.author == "Dee"


# --- every interface shows the age


def test_the_cli_shows_each_sources_age_and_its_json_the_time(ingested: KnowledgeBase, monkeypatch):
    monkeypatch.setattr(kbqa.cli, "_kb", lambda settings: ingested)
    home = ["--home", str(ingested.settings.home)]
    out = CliRunner().invoke(kbqa.cli.cli, [*home, "ask", QUESTION]).output
    years = (time.time() - COMMITTED) // (365 * 86400)
    assert out.rstrip().splitlines()[-1].endswith(f"ports.md · {int(years)} years ago")
    data = json.loads(CliRunner().invoke(kbqa.cli.cli, [*home, "ask", "--json", QUESTION]).output)
    assert data["citations"][0]["updated_at"] == "2024-03-08T10:00:00+00:00"
    assert data["citations"][0]["author"] == "Ana Lima"


def test_the_api_and_the_openai_endpoint_show_times_and_ages(ingested: KnowledgeBase):
    client = TestClient(create_app(ingested), base_url="http://127.0.0.1", client=("127.0.0.1", 1))
    data = client.post("/api/ask", json={"question": QUESTION}).json()
    assert [c["updated_at"] for c in data["citations"]] == ["2024-03-08T10:00:00+00:00"]
    assert data["hits"][0]["updated_at"] == "2024-03-08T10:00:00+00:00"
    chat = client.post(
        "/v1/chat/completions",
        json={"model": "kbqa", "messages": [{"role": "user", "content": QUESTION}]},
    ).json()
    content = chat["choices"][0]["message"]["content"]
    assert "\n\nSources:\n[1] Services — " in content and content.endswith("years ago")


def test_the_page_and_slack_show_each_sources_age(ingested: KnowledgeBase):
    answer = ingested.ask(QUESTION)
    [cited] = page.sources(answer)["citations"]
    assert cited["updated_at"] == "2024-03-08T10:00:00+00:00" and cited["age"].endswith("years ago")
    assert cited["author"] == "Ana Lima"
    _text, blocks = slack.answer_blocks(answer)
    context = next(b for b in blocks if b["type"] == "context")["elements"][0]["text"]
    assert context.startswith("[1] Services — `ports.md` · ") and context.endswith("years ago")
    assert markdown.footer(answer).endswith("years ago")
    assert terminal.answer(answer).endswith("years ago")
