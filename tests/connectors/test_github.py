"""The GitHub connector against a loopback server playing GitHub's REST and GraphQL APIs."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.github import build, repositories
from kbqa.ingest.connectors.http import Http, RemoteError, RetryPolicy
from kbqa.store import DocumentRow

from .conftest import (
    FAST_RETRY,
    ask,
    channel_audience,
    documents,
    seen_uris,
    sync,
    token_audience,
    uris,
    visible,
)
from .mock_git import FixtureRepo, GitHttpServer
from .mock_github import RATE_LIMITED, SECONDARY, TOKEN, Fault, MockGitHub

REPO = "acme/api"


@pytest.fixture
def github():
    mock = MockGitHub()
    mock.add_repo(REPO)
    mock.add_issue(
        REPO,
        1,
        "Login fails with SSO",
        "SSO login loops.",
        comments=(
            ("bob", "Which IdP?"),
            ("ada", "Okta."),
            ("bob", "Fixed by clearing the cookie."),
        ),
        state="closed",
    )
    mock.add_issue(REPO, 2, "Add dark mode", "Please.", user="cy", pull=True)
    mock.add_issue(REPO, 3, "Crash on start", "Stack trace attached.")
    mock.add_discussion(
        REPO,
        7,
        "How do I rotate keys?",
        "Is there a command?",
        comments=(
            ("dee", "Maybe restart?"),
            ("ada", "Run `api keys rotate`."),
        ),
        answer=1,
    )
    yield mock
    mock.close()


def connector(mock: MockGitHub, tmp_path, token: str = TOKEN, per_page: int = 100, **options):
    config = SourceConfig(
        name="gh",
        kind="github",
        url=mock.url,
        scope=(REPO,),
        token=token,
        options={"cache_dir": str(tmp_path / "cache"), "overlap_seconds": 0, **options},
    )
    waits: list[float] = []
    http = Http(
        mock.url,
        headers={"Authorization": f"Bearer {token}"},
        retry=RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.02),
        sleep=waits.append,
    )
    gh = build(config, http=http)
    gh.api.per_page = per_page
    gh.waits = waits
    return gh


def test_first_listing_equals_the_fixture(github, tmp_path):
    gh = connector(github, tmp_path)
    listing = gh.list(None)
    by_id = {i.id: i for i in listing.items}
    assert sorted(by_id) == [
        f"{REPO}/discussions/7",
        f"{REPO}/issues/1",
        f"{REPO}/issues/2",
        f"{REPO}/issues/3",
    ]
    assert listing.complete and not listing.problems
    issue = by_id[f"{REPO}/issues/1"]
    assert issue.url == "https://github.com/acme/api/issues/1"
    assert issue.updated_at == github.issues[REPO][1]["updated_at"]
    assert issue.version.startswith(f"{issue.updated_at}#3#")
    assert issue.access.public and issue.author == "ada"
    assert by_id[f"{REPO}/issues/2"].url.endswith("/pull/2")
    text = gh.fetch(issue).markdown
    assert text.startswith("# Login fails with SSO\n\nIssue #1 (closed; labels: bug)")
    assert text.index("SSO login loops") < text.index("Which IdP") < text.index("clearing")
    assert "Pull request #2 (open)" in gh.fetch(by_id[f"{REPO}/issues/2"]).markdown
    thread = gh.fetch(by_id[f"{REPO}/discussions/7"]).markdown
    assert "Discussion #7 (answered; Q&A)" in thread
    assert "**ada** (accepted answer): Run `api keys rotate`." in thread
    assert "**dee**: Maybe restart?" in thread
    # Only issues with comments cost a comments call.
    assert not any("/issues/3/comments" in c for c in github.calls)


def test_link_pagination_is_followed(github, tmp_path):
    for n in range(10, 17):
        github.add_issue(
            REPO, n, f"Issue {n}", "body", comments=(("bob", "a"), ("cy", "b"), ("ada", "c"))
        )
    gh = connector(github, tmp_path, per_page=2)
    listing = gh.list(None)
    assert len([i for i in listing.items if "/issues/" in i.id]) == 10
    assert sum("/repos/acme/api/issues?" in c for c in github.calls) == 5
    item = next(i for i in listing.items if i.id.endswith("/issues/10"))
    assert gh.fetch(item).markdown.count("\n---\n") == 3  # 3 comments over 2 pages


def test_an_edit_is_listed_by_since_and_nothing_else_changes(github, tmp_path):
    gh = connector(github, tmp_path)
    first = gh.list(None)
    github.calls.clear()
    unchanged = gh.list(first.cursor)
    assert not unchanged.complete
    since = json.loads(first.cursor)["repos"][REPO]["since"]
    assert any(f"since={since.replace(':', '%3A')}" in c for c in github.calls)
    github.edit_issue(REPO, 3, body="Stack trace attached. Happens on ARM only.")
    second = gh.list(unchanged.cursor)
    versions = {i.id: i.version for i in first.items}
    changed = [i.id for i in second.items if versions.get(i.id) != i.version]
    assert changed == [f"{REPO}/issues/3"]
    edited = next(i for i in second.items if i.id == f"{REPO}/issues/3")
    assert "ARM only" in gh.fetch(edited).markdown


def test_deletions_are_found_by_a_full_listing_every_nth_sync(github, tmp_path):
    gh = connector(github, tmp_path, full_every=3)
    cursor = gh.list(None).cursor
    github.delete_issue(REPO, 3)
    second = gh.list(cursor)
    assert not second.complete  # a `since` listing cannot see a deletion
    third = gh.list(second.cursor)
    assert third.complete
    assert f"{REPO}/issues/3" not in {i.id for i in third.items}
    assert f"{REPO}/issues/1" in {i.id for i in third.items}
    always = connector(github, tmp_path, full=True)
    assert always.list(third.cursor).complete


def test_a_repository_going_private_restamps_every_item(github, tmp_path):
    gh = connector(github, tmp_path)
    first = gh.list(None)
    github.add_repo(REPO, visibility="private")  # same issues, new visibility
    second = gh.list(first.cursor)
    assert second.complete and len(second.items) == len(first.items)
    assert all(not i.access.public for i in second.items)
    assert all(i.access.groups == ("github-repo:acme/api",) for i in second.items)
    assert not {i.version for i in second.items} & {i.version for i in first.items}


def test_a_repository_this_token_lost_lists_nothing_and_says_why(github, tmp_path):
    gh = connector(github, tmp_path)
    first = gh.list(None)
    del github.repos[REPO]
    second = gh.list(first.cursor)
    assert second.complete and second.items == []
    assert second.problems == [(REPO, "not found, or this token may not read it")]
    third = gh.list(second.cursor)
    assert not third.complete  # once pruned, later syncs go back to `since`


def test_rate_limits_make_the_sync_late_not_partial(github, tmp_path):
    gh = connector(github, tmp_path, per_page=2)
    reset = str(int(time.time()) + 2)
    github.faults = [
        Fault(
            "/repos/acme/api/issues",
            403,
            RATE_LIMITED,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        ),
        Fault("/graphql", 403, SECONDARY, {"Retry-After": "1"}),
        # GraphQL's own limit: HTTP 200 with an error of type RATE_LIMITED.
        Fault(
            "/graphql",
            200,
            {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3)},
        ),
        Fault("/repos/acme/api/issues/1/comments", 429, {"message": "Too Many Requests"}),
        Fault("/repos/acme/api", 502, {"message": "Server Error"}),
    ]
    listing = gh.list(None)
    assert len(listing.items) == 4 and listing.complete
    item = next(i for i in listing.items if i.id.endswith("/issues/1"))
    assert "clearing the cookie" in gh.fetch(item).markdown
    assert all(f.times == 0 for f in github.faults)
    assert gh.waits[0] == pytest.approx(0.01)  # the 502: backoff
    assert 0 < gh.waits[1] <= 2.5  # until X-RateLimit-Reset
    assert gh.waits[2] == 1.0  # the secondary limit's Retry-After
    assert 1.5 < gh.waits[3] <= 3.5  # GraphQL's limit, until its reset
    assert gh.waits[4] == pytest.approx(0.01)  # a 429 without Retry-After: backoff


@pytest.mark.parametrize(
    ("status", "body", "complete"),
    [
        # The token lost the Discussions permission: an answer, the discussions are pruned.
        (200, {"errors": [{"type": "FORBIDDEN", "message": "Resource not accessible"}]}, True),
        # A fault that outlasts the retries: this sync prunes nothing.
        (502, {"message": "Server Error"}, False),
    ],
)
def test_discussions_refused_are_pruned_and_discussions_failing_are_kept(
    github, tmp_path, status, body, complete
):
    gh = connector(github, tmp_path)
    github.faults = [Fault("/graphql", status, body, times=10)]
    listing = gh.list(None)
    assert listing.complete is complete
    assert [i.id for i in listing.items] == [f"{REPO}/issues/{n}" for n in (1, 2, 3)]
    assert listing.problems and listing.problems[0][0] == f"{REPO} discussions"


def test_bad_credentials_are_one_line_without_the_token(github, tmp_path):
    gh = connector(github, tmp_path, token="github_pat_wrong_0123456789")
    with pytest.raises(RemoteError) as caught:
        gh.list(None)
    assert caught.value.status == 401 and "Bad credentials" in str(caught.value)
    assert "github_pat_wrong" not in str(caught.value) and "\n" not in str(caught.value)


def test_repositories_from_url_and_scope():
    config = SourceConfig(name="g", kind="github", url="https://github.com/acme/api")
    assert repositories(config) == ("https://api.github.com", ("acme/api",))
    config = SourceConfig(
        name="g", kind="github", url="https://ghe.example/api/v3", scope=("a/b", "c/d")
    )
    assert repositories(config) == ("https://ghe.example/api/v3", ("a/b", "c/d"))


# -- synced into a knowledge base (the real `kbqa sync` path) -------------------------------


def gh_uris(*ids: str) -> set[str]:
    return {f"github:gh/{REPO}/{i}" for i in ids}


ALL = ("issues/1", "issues/2", "issues/3", "discussions/7")


class Killed(BaseException):
    """Stands for the process dying: nothing in the sync may catch it."""


def test_a_first_sync_equals_the_fixture_and_an_edit_reembeds_only_that_issue(
    github, tmp_path, ckb
):
    gh = connector(github, tmp_path)
    first = sync(ckb, gh)
    assert first.error == "" and uris(ckb) == gh_uris(*ALL)
    stored = documents(ckb)
    meta = stored[f"github:gh/{REPO}/issues/1"]["metadata"]
    assert meta["url"] == "https://github.com/acme/api/issues/1"
    assert meta["updated_at"] == github.issues[REPO][1]["updated_at"]
    assert meta["access"]["public"] is True
    assert "accepted answer" in stored[f"github:gh/{REPO}/discussions/7"]["text"]
    parsed, embedded = ckb.parser.calls, ckb.embedder.texts
    again = sync(ckb, gh).report  # a `since` sync: what changed, nothing
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert ckb.parser.calls == parsed and ckb.embedder.texts == embedded
    github.comment(REPO, 3, "bob", "It only crashes when the disk is full.")
    edited = sync(ckb, gh)
    assert (edited.report.updated, edited.report.added, edited.report.removed) == (1, 0, 0)
    assert ckb.parser.calls == parsed + 1 and 0 < ckb.embedder.texts - embedded <= 3
    assert "disk is full" in documents(ckb)[f"github:gh/{REPO}/issues/3"]["text"]
    answer = ask(ckb, "When does it crash on start?")
    assert f"github:gh/{REPO}/issues/3" in seen_uris(answer)


def test_a_deleted_issue_and_a_lost_repository_leave_the_answers(github, tmp_path, ckb):
    gh = connector(github, tmp_path, full_every=2)
    sync(ckb, gh)
    github.delete_issue(REPO, 3)
    assert sync(ckb, gh).report.removed == 1  # the 2nd sync lists every ID
    assert uris(ckb) == gh_uris("issues/1", "issues/2", "discussions/7")
    assert f"github:gh/{REPO}/issues/3" not in seen_uris(ask(ckb, "crash on start stack trace"))
    del github.repos[REPO]
    gone = sync(ckb, gh)
    assert gone.error == "" and uris(ckb) == set()


def test_a_repository_gone_private_reaches_only_audiences_granted_it(github, tmp_path, ckb):
    gh = connector(github, tmp_path)
    sync(ckb, gh)
    question = "How do I rotate keys?"
    outsider = channel_audience()
    assert f"github:gh/{REPO}/discussions/7" in seen_uris(ask(ckb, question, outsider))
    github.add_repo(REPO, visibility="private")
    result = sync(ckb, gh)
    assert result.report.updated == 4
    for audience in (outsider, token_audience(), token_audience("github-repo:acme/web")):
        assert not seen_uris(ask(ckb, question, audience)) & gh_uris(*ALL)
        assert not visible(ckb, audience) & gh_uris(*ALL)
    granted = token_audience("github-repo:acme/api")
    assert f"github:gh/{REPO}/discussions/7" in seen_uris(ask(ckb, question, granted))


def test_a_rate_limited_sync_finishes_late_but_whole(github, tmp_path, ckb):
    gh = connector(github, tmp_path, per_page=2)
    gh.api.http.retry, gh.api.http.sleep = FAST_RETRY, time.sleep
    github.faults = [
        Fault(
            "/repos/acme/api/issues",
            403,
            RATE_LIMITED,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 60)},
        ),
        Fault("/repos/acme/api/issues/1/comments", 403, SECONDARY, {"Retry-After": "30"}, times=2),
        Fault("/graphql", 429, {"message": "Too Many Requests"}, {"Retry-After": "1"}),
    ]
    result = sync(ckb, gh)
    assert result.error == "" and result.failed == [] and uris(ckb) == gh_uris(*ALL)
    assert all(f.times == 0 for f in github.faults) and gh.api.http.waited > 0
    assert "clearing the cookie" in documents(ckb)[f"github:gh/{REPO}/issues/1"]["text"]


def test_a_sync_killed_between_issues_loses_and_duplicates_nothing(github, tmp_path, ckb):
    for n in range(10, 16):
        github.add_issue(REPO, n, f"Issue {n}", f"Issue {n} is about part {n * 3}.")
    every = gh_uris(*ALL, *(f"issues/{n}" for n in range(10, 16)))
    for kill_at in (1, 4, 6):
        gh = connector(github, tmp_path)
        fetched, count = gh.fetch, {"n": 0}

        def dying(item, fetched=fetched, count=count, kill_at=kill_at):
            count["n"] += 1
            if count["n"] == kill_at:
                raise Killed()
            return fetched(item)

        gh.fetch = dying
        with pytest.raises(Killed):
            sync(ckb, gh)
        result = sync(ckb, connector(github, tmp_path))
        assert result.error == "" and uris(ckb) == every
        with ckb.store.session() as s:
            assert s.scalar(select(func.count()).select_from(DocumentRow)) == len(every)
        for n in range(10, 16):
            github.edit_issue(REPO, n, body=f"Issue {n} changed after kill {kill_at}.")


def test_docs_and_wiki_come_through_the_git_connector(github, tmp_path, ckb):
    repo = FixtureRepo(tmp_path / "api")
    repo.commit(
        {
            "README.md": "# API\n\nThe API listens on port 8443.\n",
            "docs/keys.md": "# Keys\n\nRotate keys with `api keys rotate`.\n",
        }
    )
    wiki = FixtureRepo(tmp_path / "api.wiki")
    wiki.commit({"On-call.md": "# On call\n\nPage the API team through the pager.\n"})
    # A private repository: the git path must clone with the source's token.
    served = GitHttpServer(repo.repo, wiki=wiki.repo, password=TOKEN)
    try:
        github.add_repo(REPO, visibility="private", clone_url=served.url)
        gh = connector(github, tmp_path, docs=True, wiki=True)
        first = sync(ckb, gh)
        docs = gh_uris("docs/README.md", "docs/docs/keys.md", "wiki/On-call.md")
        assert first.error == "" and first.failed == []
        assert uris(ckb) == gh_uris(*ALL) | docs
        stored = documents(ckb)
        meta = stored[f"github:gh/{REPO}/docs/README.md"]["metadata"]
        assert meta["access"] == {"public": False, "groups": [f"github-repo:{REPO}"], "users": []}
        assert "/blob/" in meta["url"]
        wiki_url = stored[f"github:gh/{REPO}/wiki/On-call.md"]["metadata"]["url"]
        assert wiki_url == f"{served.url[:-4]}/wiki/On-call/{wiki.repo.head().decode()}"
        repo.commit({"docs/keys.md": None})
        result = sync(ckb, gh)  # a `since` sync: the tree diff names the deletion
        assert not result.complete and result.report.removed == 1
        assert uris(ckb) == gh_uris(*ALL) | docs - gh_uris("docs/docs/keys.md")
        gh.close()
    finally:
        served.close()
        repo.repo.close()
        wiki.repo.close()
