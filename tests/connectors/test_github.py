"""The GitHub connector against a loopback server playing GitHub's REST and GraphQL APIs."""

from __future__ import annotations

import json
import time

import pytest
from .mock_github import RATE_LIMITED, SECONDARY, TOKEN, Fault, MockGitHub

from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.github import build, repositories
from kbqa.ingest.connectors.http import Http, RemoteError, RetryPolicy

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
    assert gh.waits[3] == pytest.approx(0.01)  # a 429 without Retry-After: backoff


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
