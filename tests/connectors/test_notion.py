"""The Notion connector against the Notion API on 127.0.0.1 (mock_notion.py): search paged
with start_cursor, blocks recursed into Markdown, database rows with their properties, and the
connector contract (edits, archive, unshare, kills, 429s, the workspace principal)."""

import pytest

from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.notion import NOTION_VERSION, build

from .conftest import (
    ask,
    channel_audience,
    documents,
    seen_uris,
    sync,
    token_audience,
    uris,
    visible,
)
from .helpers_web import Killed, kill_at, record_waits, reference, restarted, stored
from .mock_notion import RATE_LIMITED, TOKEN, MockNotion, nid

PAGES = ("wiki", "oncall", "billing", "tracker", "incident", "retired")
MEMBERS = token_audience("notion-workspace:acme")


@pytest.fixture
def notion():
    with MockNotion() as server:
        yield server


def connect(notion, **options):
    config = SourceConfig(name="acme", kind="notion", url=notion.url, token=TOKEN, options=options)
    connector = build(config)
    connector.waits = record_waits(connector.gateway.http)
    return connector, config


def uri(name):
    return f"notion:acme/{nid(name)}"


def test_a_first_sync_stores_every_shared_page_with_its_blocks(ckb, notion):
    connector, config = connect(notion)
    result = sync(ckb, connector, config)
    assert result.error == "" and result.complete
    assert uris(ckb) == {uri(p) for p in PAGES}  # the database itself is not a document
    searches = [c for c in notion.calls if c.path == "/v1/search"]
    assert len(searches) == 3 and all(
        c.headers["notion-version"] == NOTION_VERSION for c in notion.calls
    )
    docs = documents(ckb)
    wiki = docs[uri("wiki")]
    for words in (
        "osprey pipeline",
        "check the canary dashboard",
        "osprey deploy --env prod",
        "Never deploy on a Friday",
        "Freeze window",
        "previous tag",
        "7400",
    ):
        assert words in wiki["text"], words
    assert wiki["title"] == "Engineering wiki"
    meta = wiki["metadata"]
    assert meta["url"].startswith("https://www.notion.so/Engineering-wiki-")
    assert meta["updated_at"] == "2026-11-02T09:30:00.000Z"
    assert meta["access"] == {"public": False, "groups": ["notion-workspace:acme"], "users": []}
    billing = docs[uri("billing")]["text"]  # a database row: its properties, then its blocks
    assert "Owner: Payments team" in billing and "invoices on the first" in billing


def test_an_edit_refetches_only_that_page(ckb, notion):
    connector, config = connect(notion)
    sync(ckb, connector, config)
    parsed, embedded = ckb.parser.calls, ckb.embedder.texts
    notion.clear_calls()
    result = sync(ckb, connector, config)
    assert result.report.unchanged == len(PAGES) and notion.paths("/v1/blocks") == []
    notion.edit("tracker", "The tracker now keeps issue history for five years.")
    notion.clear_calls()
    result = sync(ckb, connector, config)
    assert result.report.updated == 1 and ckb.parser.calls == parsed + 1
    assert 0 < ckb.embedder.texts - embedded <= 2
    assert notion.paths("/v1/blocks") == [f"/v1/blocks/{nid('tracker')}/children"]
    assert "five years" in documents(ckb)[uri("tracker")]["text"]


def test_an_archived_page_and_an_unshared_one_leave_the_answers(ckb, notion):
    connector, config = connect(notion)
    sync(ckb, connector, config)
    assert uri("incident") in seen_uris(ask(ckb, "leaked staging key rotated", MEMBERS))
    notion.archive("retired")
    notion.unshare("incident")
    result = sync(ckb, connector, config)
    assert result.error == "" and result.report.removed == 2
    assert uris(ckb) == {uri(p) for p in PAGES if p not in ("retired", "incident")}
    assert uri("incident") not in seen_uris(ask(ckb, "leaked staging key rotated", MEMBERS))


def test_a_page_unshared_between_listing_and_fetch_is_named_and_the_rest_goes_on(ckb, notion):
    connector, config = connect(notion)
    listing = connector.list(None)
    connector.list = lambda cursor: listing
    notion.unshare("incident")
    result = sync(ckb, connector, config)
    assert result.report.added == len(PAGES) - 1
    failed = [name for name, why in result.failed if "shared with your integration" in why]
    assert failed == ["acme: Security incident notes"]


@pytest.mark.parametrize("at", [1, 4])
def test_a_kill_mid_sync_and_a_rerun_lose_and_duplicate_nothing(ckb, notion, at, tmp_path):
    connector, config = connect(notion)
    kill_at(connector, at)
    with pytest.raises(Killed):
        sync(ckb, connector, config)
    again = restarted(ckb)
    result = sync(again, *connect(notion))
    assert result.error == "" and uris(again) == {uri(p) for p in PAGES}
    assert stored(again) == reference(ckb, tmp_path / "clean", *connect(notion))


def test_a_rate_limited_sync_finishes_late_but_whole(ckb, notion):
    connector, config = connect(notion)
    notion.fail("/v1/search", 429, {"Retry-After": "4"}, body=RATE_LIMITED)
    notion.fail(f"/v1/blocks/{nid('wiki')}/children", 429, body=RATE_LIMITED, times=2)
    result = sync(ckb, connector, config)
    assert result.error == "" and result.complete and uris(ckb) == {uri(p) for p in PAGES}
    # Retry-After honoured; without it, the backoff
    assert connector.waits[0] == 4.0 and len(connector.waits) == 3
    assert "osprey pipeline" in documents(ckb)[uri("wiki")]["text"]


def test_pages_reach_only_the_workspace_members(ckb, notion):
    connector, config = connect(notion)
    sync(ckb, connector, config)
    for stranger in (channel_audience(), token_audience("notion-workspace:other")):
        assert visible(ckb, stranger) == set()
        for question in ("leaked staging key", "osprey deploy", "billing invoices"):
            assert seen_uris(ask(ckb, question, stranger)) == set()
    assert visible(ckb, MEMBERS) == {uri(p) for p in PAGES}


def test_a_scope_keeps_the_pages_under_its_roots(notion):
    connector, _ = connect(notion)
    connector.roots = {nid("wiki").replace("-", "")}
    assert {i.title for i in connector.list(None).items} == {"Engineering wiki", "On-call handbook"}


def test_a_search_that_fails_part_way_prunes_nothing_and_a_refused_token_fails(ckb, notion):
    connector, config = connect(notion)
    sync(ckb, connector, config)
    notion.unshare("retired")
    notion.fail("/v1/search", 502, times=6, skip=1)
    result = sync(ckb, connector, config)
    assert result.error == "" and not result.complete and uri("retired") in uris(ckb)
    bad = SourceConfig(name="acme", kind="notion", url=notion.url, token="secret_wrong-token")
    result = sync(ckb, build(bad), bad)
    assert "HTTP 401" in result.error and "wrong-token" not in result.error
    assert len(uris(ckb)) == len(PAGES)
