"""The git connector against a fixture repository: over dulwich's HTTP server and as a path."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kbqa.errors import KbqaError
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.git import GitConnector, Permalinks, build, markdown_sections
from kbqa.store import DocumentRow

from .conftest import (
    ask,
    channel_audience,
    cursor,
    documents,
    seen_uris,
    sync,
    token_audience,
    uris,
    visible,
)
from .mock_git import FixtureRepo, GitHttpServer

FILES = {
    "README.md": "# Widget\n\nWidget turns sprockets.\n",
    "docs/install.md": "# Install\n\n## Linux\n\nRun make.\n\n## macOS\n\nRun brew.\n",
    "docs/api.rst": "API\n===\n\nThe widget API has one call.\n",
    "docs/site/index.html": "<html><body><h1>Site</h1><p>Hello</p></body></html>",
    "notes.txt": "Plain notes.\n",
    "src/widget.py": "print('not a doc')\n",
    "requirements.txt": "httpx\n",
    ".github/ISSUE_TEMPLATE.md": "# Template\n",
    "LICENSE.txt": "MIT\n",
}
DOCS = ["README.md", "docs/api.rst", "docs/install.md", "docs/site/index.html", "notes.txt"]


@pytest.fixture
def fixture(tmp_path):
    repo = FixtureRepo(tmp_path / "widget")
    repo.commit(FILES, "first", author="Ada Lovelace <ada@example.com>")
    yield repo
    repo.repo.close()


@pytest.fixture
def server(fixture):
    served = GitHttpServer(fixture.repo)
    yield served
    served.close()


def connector(tmp_path, url: str, **options) -> GitConnector:
    config = SourceConfig(
        name="widget", kind="git", url=url, options={"cache_dir": str(tmp_path / "c"), **options}
    )
    return build(config)


def test_first_listing_over_http_equals_the_fixture(tmp_path, fixture, server):
    head = fixture.commit(
        {"docs/install.md": FILES["docs/install.md"] + "\nDone.\n"}, "more", "Bob <b@x>"
    )
    git = connector(tmp_path, server.url)
    listing = git.list(None)
    assert [i.id for i in listing.items] == DOCS
    assert listing.complete and listing.removed == [] and listing.cursor == head
    by_id = {i.id: i for i in listing.items}
    assert all(by_id[p].version == f"{fixture.blob(p)}#git-repo:widget" for p in DOCS)
    assert by_id["docs/install.md"].author == "Bob"
    assert by_id["docs/install.md"].url == f"{server.url[:-4]}/blob/{head}/docs/install.md"
    assert by_id["README.md"].author == "Ada Lovelace"
    assert by_id["README.md"].updated_at < by_id["docs/install.md"].updated_at
    assert by_id["README.md"].updated_at.endswith("Z")
    # Fail closed: a source not declared public is only for audiences granted the repo.
    assert not by_id["README.md"].access.public
    assert by_id["README.md"].access.groups == ("git-repo:widget",)
    assert git.fetch(by_id["docs/install.md"]).markdown.endswith("Done.\n")
    rst = git.fetch(by_id["docs/api.rst"])
    assert rst.filename == "api.rst" and rst.file.read_text().startswith("API\n===")
    rst.file.unlink()
    git.close()


def test_an_unchanged_repository_costs_one_ref_advertisement(tmp_path, fixture, server):
    git = connector(tmp_path, server.url)
    first = git.list(None)
    server.requests.clear()
    again = git.list(first.cursor)
    assert again.items == first.items and again.removed == []
    assert server.requests == ["GET /repo.git/info/refs"]
    git.close()


def test_edits_adds_and_deletes_come_from_the_tree_diff(tmp_path, fixture, server):
    git = connector(tmp_path, server.url)
    first = git.list(None)
    head = fixture.commit(
        {
            "docs/install.md": "# Install\n\nRun make install.\n",
            "docs/api.rst": None,
            "docs/new.md": "# New\n",
        },
        "edit, delete, add",
        author="Cy <c@x>",
    )
    second = git.list(first.cursor)
    before = {i.id: i for i in first.items}
    after = {i.id: i for i in second.items}
    assert second.removed == ["docs/api.rst"] and second.cursor == head
    assert set(after) == set(DOCS) - {"docs/api.rst"} | {"docs/new.md"}
    changed = {p for p in after if p not in before or after[p].version != before[p].version}
    assert changed == {"docs/install.md", "docs/new.md"}
    assert after["docs/install.md"].author == "Cy" and after["README.md"].author == "Ada Lovelace"
    assert after["README.md"] == before["README.md"]  # its permalink and time did not move
    git.close()


def test_history_memo_matches_a_fresh_walk(tmp_path, fixture):
    git = connector(tmp_path, str(fixture.path))
    git.list(None)
    for n in range(3):
        fixture.commit({f"docs/n{n}.md": f"# N{n}\n", "README.md": f"# Widget {n}\n"}, f"c{n}")
    incremental = git.list(None).items
    git.close()
    fresh = connector(tmp_path / "fresh", str(fixture.path)).list(None).items
    assert incremental == fresh


def test_a_local_path_links_to_the_file(tmp_path, fixture):
    git = connector(tmp_path, str(fixture.path), access="public", include=["docs/**"])
    listing = git.list(None)
    assert [i.id for i in listing.items] == [
        "docs/api.rst",
        "docs/install.md",
        "docs/site/index.html",
    ]
    item = listing.items[1]
    assert item.url == (fixture.path / "docs/install.md").resolve().as_uri()
    assert item.access.public
    lines = [s["url"].rsplit("#", 1)[1] for s in git.sections(item, git.fetch(item).markdown)]
    assert lines == ["L1-L2", "L3-L6", "L7-L9"]
    git.close()


def test_scope_limits_the_listing_to_base_paths(tmp_path, fixture):
    config = SourceConfig(
        name="w",
        kind="git",
        url=str(fixture.path),
        scope=("docs/site",),
        options={"cache_dir": str(tmp_path / "c")},
    )
    git = build(config)
    assert [i.id for i in git.list(None).items] == ["docs/site/index.html"]
    git.close()


def test_permalinks_per_host():
    sha = "a" * 40
    assert Permalinks("https://tok@github.com/acme/api.git")(sha, "docs/x.md", 10, 42) == (
        f"https://github.com/acme/api/blob/{sha}/docs/x.md#L10-L42"
    )
    assert Permalinks("https://gitlab.com/g/p.git")(sha, "a b.md", 3, 4) == (
        f"https://gitlab.com/g/p/-/blob/{sha}/a%20b.md#L3-4"
    )
    assert Permalinks("https://github.com/acme/api.wiki.git")(sha, "Runbook.md") == (
        f"https://github.com/acme/api/wiki/Runbook/{sha}"
    )
    assert Permalinks("https://git.example/x", "{base}/src/{sha}/{path}")(sha, "y.md") == (
        f"https://git.example/x/src/{sha}/y.md"
    )


def test_markdown_sections_skip_fenced_code():
    text = "# A\n\n```\n# not a heading\n```\n## B\nx\n# C\n"
    assert markdown_sections(text) == [("A", 1, 5), ("A › B", 6, 7), ("C", 8, 8)]


def test_a_missing_repository_or_branch_is_one_line(tmp_path, fixture, server):
    with pytest.raises(KbqaError, match="no such repository"):
        connector(tmp_path, str(tmp_path / "nowhere")).list(None)
    with pytest.raises(KbqaError, match="no branch 'gh-pages'"):
        connector(tmp_path, server.url, branch="gh-pages").list(None)
    config = SourceConfig(
        name="w",
        kind="git",
        url="http://127.0.0.1:9/x.git",
        token="s3cret",
        options={"cache_dir": str(tmp_path / "d")},
    )
    with pytest.raises(KbqaError) as caught:
        build(config).list(None)
    assert "fetch failed" in str(caught.value) and "s3cret" not in str(caught.value)
    assert "\n" not in str(caught.value)


# -- synced into a knowledge base (the real `kbqa sync` path) -------------------------------

KB_FILES = {
    "README.md": "# Widget\n\nThe widget turns sprockets at forty revolutions per minute.\n",
    "docs/deploy.md": "# Deploy\n\nDeploy the widget with the blue lever on Tuesdays.\n",
    "docs/backup.rst": "Backup\n======\n\nBackups of the widget run nightly to the vault.\n",
    "docs/faq.txt": "The widget's warranty lasts seven years.\n",
}


class Killed(BaseException):
    """Stands for the process dying: nothing in the sync may catch it."""


def kb_uris(*paths: str) -> set[str]:
    return {f"git:widget/{p}" for p in paths}


@pytest.fixture
def kb_repo(tmp_path):
    repo = FixtureRepo(tmp_path / "kbrepo")
    repo.commit(KB_FILES, "first")
    yield repo
    repo.repo.close()


def test_a_first_sync_equals_the_fixture_and_an_edit_reembeds_only_that_file(
    ckb, tmp_path, kb_repo
):
    served = GitHttpServer(kb_repo.repo)
    try:
        git = connector(tmp_path, served.url)
        first = sync(ckb, git)
        assert first.error == "" and uris(ckb) == kb_uris(*KB_FILES)
        meta = documents(ckb)["git:widget/docs/deploy.md"]["metadata"]
        assert (
            meta["url"].startswith(f"{served.url[:-4]}/blob/") and meta["author"] == "Ada Lovelace"
        )
        assert meta["access"] == {"public": False, "groups": ["git-repo:widget"], "users": []}
        assert "blue lever" in documents(ckb)["git:widget/docs/deploy.md"]["text"]
        assert "nightly" in documents(ckb)["git:widget/docs/backup.rst"]["text"]
        parsed, embedded = ckb.parser.calls, ckb.embedder.texts
        unchanged = sync(ckb, git)
        assert unchanged.report.unchanged == 4 and ckb.parser.calls == parsed
        kb_repo.commit({"docs/deploy.md": "# Deploy\n\nDeploy the widget with the red lever.\n"})
        edited = sync(ckb, git)
        assert (edited.report.updated, edited.report.added, edited.report.removed) == (1, 0, 0)
        assert ckb.parser.calls == parsed + 1
        assert 0 < ckb.embedder.texts - embedded <= 2
        assert "red lever" in documents(ckb)["git:widget/docs/deploy.md"]["text"]
        assert cursor(ckb, "widget") == kb_repo.repo.head().decode()
        git.close()
    finally:
        served.close()


def test_a_deleted_file_leaves_the_answers(ckb, tmp_path, kb_repo):
    git = connector(tmp_path, str(kb_repo.path))
    sync(ckb, git)
    assert "git:widget/docs/faq.txt" in seen_uris(ask(ckb, "How long is the warranty?"))
    kb_repo.commit({"docs/faq.txt": None}, "drop the faq")
    result = sync(ckb, git)
    assert result.report.removed == 1 and uris(ckb) == kb_uris(*KB_FILES) - kb_uris("docs/faq.txt")
    assert "git:widget/docs/faq.txt" not in seen_uris(ask(ckb, "How long is the warranty?"))
    git.close()


def test_only_audiences_granted_the_repository_see_it(ckb, tmp_path, kb_repo):
    public = connector(tmp_path, str(kb_repo.path), access="public")
    sync(ckb, public)
    question = "When are backups of the widget run?"
    assert "git:widget/docs/backup.rst" in seen_uris(ask(ckb, question, token_audience()))
    public.close()
    # The source made restricted: every item is re-stamped, none reaches an outsider.
    restricted = connector(tmp_path, str(kb_repo.path))
    result = sync(ckb, restricted)
    assert result.report.updated == 4
    for audience in (token_audience(), token_audience("git-repo:other"), channel_audience()):
        assert not seen_uris(ask(ckb, question, audience)) & kb_uris(*KB_FILES)
        assert not visible(ckb, audience) & kb_uris(*KB_FILES)
    granted = token_audience("git-repo:widget")
    assert "git:widget/docs/backup.rst" in seen_uris(ask(ckb, question, granted))
    restricted.close()


def test_a_sync_killed_between_files_loses_and_duplicates_nothing(ckb, tmp_path, kb_repo):
    for n in range(8):
        kb_repo.commit({f"docs/page{n}.md": f"# Page {n}\n\nPage {n} says {n * 7}.\n"})
    every = kb_uris(*KB_FILES, *(f"docs/page{n}.md" for n in range(8)))
    for kill_at in (1, 4, 7):
        git = connector(tmp_path, str(kb_repo.path))
        fetched = git.fetch
        count = {"n": 0}

        def dying(item, fetched=fetched, count=count, kill_at=kill_at):
            count["n"] += 1
            if count["n"] == kill_at:
                raise Killed()
            return fetched(item)

        git.fetch = dying
        with pytest.raises(Killed):
            sync(ckb, git)
        git.close()
        again = connector(tmp_path, str(kb_repo.path))
        result = sync(ckb, again)
        assert result.error == "" and uris(ckb) == every
        with ckb.store.session() as s:
            assert s.scalar(select(func.count()).select_from(DocumentRow)) == len(every)
        again.close()
        kb_repo.commit({f"docs/page{n}.md": f"# Page {n}\n\nNow {kill_at}.\n" for n in range(8)})


def test_a_private_repository_is_cloned_with_the_token(tmp_path, fixture):
    served = GitHttpServer(fixture.repo, password="s3cret-token-1")
    try:

        def private(token: str, cache: str) -> GitConnector:
            config = SourceConfig(
                name="widget",
                kind="git",
                url=served.url,
                token=token,
                options={"cache_dir": str(tmp_path / cache)},
            )
            return build(config)

        git = private("s3cret-token-1", "ok")
        assert [i.id for i in git.list(None).items] == DOCS
        git.close()
        with pytest.raises(KbqaError) as caught:
            private("wrong-token-22", "no").list(None)
        message = str(caught.value)
        assert message.startswith(f"git: {served.url}: fetch failed")
        assert "wrong-token-22" not in message and "\n" not in message
    finally:
        served.close()


LONG_DOC = (
    "# Runbook\n\nThe runbook for the widget.\n\n"
    + "".join(f"Filler line {n}.\n\n" for n in range(4))
    + "## Rotation\n\nRotate the widget keys every ninety days with the keyring tool.\n\n"
    + "## Paging\n\nPage the on-call engineer through the pager bridge.\n"
)


def test_a_citation_links_to_the_lines_of_its_section(ckb, tmp_path, kb_repo, monkeypatch):
    import json

    from click.testing import CliRunner

    import kbqa.cli

    kb_repo.commit({"docs/runbook.md": LONG_DOC})
    served = GitHttpServer(kb_repo.repo)
    try:
        git = connector(tmp_path, served.url)
        assert sync(ckb, git).error == ""
        git.close()
    finally:
        served.close()
    start = LONG_DOC.splitlines().index("## Rotation") + 1
    sha = kb_repo.repo.head().decode()
    want = f"{served.url[:-4]}/blob/{sha}/docs/runbook.md#L{start}-L{start + 3}"
    monkeypatch.setattr(kbqa.cli, "_kb", lambda settings: ckb)
    home = ["--home", str(ckb.settings.home)]
    question = "How often are the widget keys rotated with the keyring tool?"
    result = CliRunner().invoke(kbqa.cli.cli, [*home, "ask", "--json", question])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    cited = {c["heading"]: c["link"] for c in data["citations"]}
    assert cited["Runbook › Rotation"] == want
    text = CliRunner().invoke(kbqa.cli.cli, [*home, "ask", question]).output
    assert f"Runbook › Rotation — {want}" in text
    # Any other passage links to its own lines or file, never to this section.
    other = [h["link"] for h in data["hits"] if h["heading"] != "Runbook › Rotation"]
    assert other and want not in other
    assert all("/blob/" in link for link in other)


def test_each_knowledge_base_keeps_its_mirror_under_its_own_home(tmp_path, kb_repo, monkeypatch):
    from kbqa.app import KnowledgeBase
    from kbqa.assistant.generator import EchoGenerator
    from kbqa.ingest.connect import sync_sources
    from kbqa.retrieval.embedder import HashEmbedder
    from kbqa.settings import Settings

    monkeypatch.setenv("KBQA_HOME", str(tmp_path / "environment"))
    source = SourceConfig(name="widget", kind="git", url=str(kb_repo.path))
    for home in (tmp_path / "one", tmp_path / "two"):
        settings = Settings(home=home, sources=(source,))
        kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())
        [result] = sync_sources(["widget"], settings, kb.store, kb.index_sources)
        assert result.error == "" and uris(kb) == kb_uris(*KB_FILES)
        assert (home / "connectors" / "widget" / "repo.git" / "HEAD").is_file()
    assert not (tmp_path / "environment").exists()
    with pytest.raises(KbqaError, match="source 'widget': no KBQA_HOME"):
        build(source)
