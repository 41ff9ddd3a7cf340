"""The connector glue (connectors/base.py, ingest/connect.py) over an in-memory connector:
fingerprints from the service's version, pruning only after a complete listing, per-item
failures, the cursor stored after the items, and access metadata on every document."""

import pytest

from kbqa.errors import ConfigError, KbqaError
from kbqa.ingest.connect import configured
from kbqa.ingest.connectors import build_connector
from kbqa.ingest.connectors.base import Access
from kbqa.ingest.connectors.config import SourceConfig, parse_sources
from kbqa.settings import Settings

from .conftest import FakeConnector, cursor, documents, sync, uris

RUNBOOK = "# Rotating keys\n\nRun vault rotate on the staging cluster every Monday.\n"
BACKUPS = "# Backups\n\nBackups of larkdb run nightly at 02:00 UTC.\n"


def fake(*names: str) -> FakeConnector:
    connector = FakeConnector()
    for i, name in enumerate(names, 1):
        connector.put(str(i), f"# {name}\n\nThe {name} page says {name} words here.\n")
    return connector


def test_a_first_sync_stores_each_item_with_its_link_time_author_and_access(ckb):
    connector = fake()
    connector.put("1", RUNBOOK, access=Access(groups=("fake-space:ENG",)))
    connector.put("2", BACKUPS)
    result = sync(ckb, connector)
    assert result.error == "" and result.report.added == 2
    docs = documents(ckb)
    assert set(docs) == {"fake:fake/1", "fake:fake/2"}
    meta = docs["fake:fake/1"]["metadata"]
    assert meta["url"] == "https://fake.example/1"
    assert meta["updated_at"] == "2026-11-30T10:00:00Z" and meta["author"] == "ada"
    assert meta["access"] == {"public": False, "groups": ["fake-space:ENG"], "users": []}
    assert "vault rotate" in docs["fake:fake/1"]["text"]
    assert docs["fake:fake/1"]["content_hash"] == "1"  # the service's version


def test_an_unchanged_item_is_neither_fetched_nor_parsed_nor_embedded(ckb):
    connector = fake("alpha", "beta", "gamma")
    sync(ckb, connector)
    parsed, embedded = ckb.parser.calls, ckb.embedder.texts
    connector.fetched.clear()
    result = sync(ckb, connector)
    assert result.report.unchanged == 3 and connector.fetched == []
    assert (ckb.parser.calls, ckb.embedder.texts) == (parsed, embedded)
    connector.put("2", "# beta\n\nThe beta page now says other words.\n", version="2")
    result = sync(ckb, connector)
    assert result.report.updated == 1 and connector.fetched == ["2"]
    assert ckb.parser.calls == parsed + 1


def test_a_complete_listing_prunes_and_an_incomplete_one_prunes_nothing(ckb):
    connector = fake("alpha", "beta", "gamma")
    sync(ckb, connector)
    del connector.items["3"]
    connector.complete = False
    result = sync(ckb, connector)
    assert result.status == "partial" and "fake:fake/3" in uris(ckb)
    connector.complete = True
    result = sync(ckb, connector)
    assert result.report.removed == 1 and uris(ckb) == {"fake:fake/1", "fake:fake/2"}


def test_ids_known_removed_are_pruned_from_a_changes_listing(ckb):
    connector = fake("alpha", "beta")
    sync(ckb, connector)
    listing_of = connector.list

    def changes(cursor):
        listing = listing_of(cursor)
        listing.items, listing.complete, listing.removed = [], False, ["2"]
        return listing

    connector.list = changes
    result = sync(ckb, connector)
    assert result.report.removed == 1 and uris(ckb) == {"fake:fake/1"}


def test_a_failed_item_is_named_with_its_reason_and_the_rest_goes_on(ckb):
    connector = fake("alpha", "beta", "gamma")
    connector.fail = {"2"}
    result = sync(ckb, connector)
    assert result.report.added == 2 and result.status == "partial"
    assert result.failed == [("fake: Page 2", "2 cannot be read (HTTP 500)")]
    assert uris(ckb) == {"fake:fake/1", "fake:fake/3"}


def test_the_cursor_is_stored_only_once_the_items_are(ckb, monkeypatch):
    connector = fake("alpha")
    sync(ckb, connector)
    assert cursor(ckb, "fake") == "c1"
    connector.put("2", BACKUPS)

    def broken(sources, progress=None):
        raise KbqaError("the database is locked")

    monkeypatch.setattr(ckb, "index_sources", broken)
    result = sync(ckb, connector)
    assert result.error == "the database is locked" and cursor(ckb, "fake") == "c1"
    monkeypatch.undo()
    sync(ckb, connector)
    assert connector.cursors == [None, "c1", "c1"] and cursor(ckb, "fake") == "c3"


def test_sources_tables_are_read_with_their_credentials_from_the_environment(tmp_path):
    toml = tmp_path / "kbqa.toml"
    toml.write_text(
        'top_k = 3\n[[sources]]\nname = "wiki"\nkind = "confluence"\n'
        'url = "https://acme.atlassian.net"\ntoken_env = "WIKI_TOKEN"\nuser_env = "WIKI_USER"\n'
        'scope = ["ENG", "OPS"]\nschedule_minutes = 30\nmax_pages = 10\n'
    )
    settings = Settings.load(toml, environ={"WIKI_TOKEN": "s3cret-token", "WIKI_USER": "a@b"})
    (wiki,) = settings.sources
    assert (wiki.name, wiki.kind, wiki.scope, wiki.schedule_minutes) == (
        "wiki",
        "confluence",
        ("ENG", "OPS"),
        30,
    )
    assert wiki.options == {"max_pages": 10} and (wiki.token, wiki.user) == ("s3cret-token", "a@b")
    assert "s3cret" not in repr(settings)
    assert configured(settings, ["wiki"]) == [wiki]
    with pytest.raises(KbqaError, match="no source named nope"):
        configured(settings, ["nope"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "jira", "url": "u"}, r"^\[\[sources\]\] 2: 'name' is missing"),
        ({"name": "x", "url": "u"}, r"^\[\[sources\]\] 2: 'kind' is missing"),
        ({"name": "x", "kind": "jira"}, r"^\[\[sources\]\] 2: 'url' is missing"),
        ({"name": "x", "kind": "svn", "url": "u"}, r"^\[\[sources\]\] 2 \(x\): 'kind' must be"),
        ({"name": "ok", "kind": "jira", "url": "u"}, r"'name' is used by another source"),
        ({"name": "x", "kind": "jira", "url": "u", "scope": 3}, r"'scope' must be a list"),
        ({"name": "x", "kind": "web", "url": "u", "schedule_minutes": -1}, "schedule_minutes"),
    ],
)
def test_a_bad_sources_table_is_one_line_naming_its_number_and_field(table, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_sources([{"name": "ok", "kind": "jira", "url": "u"}, table], {})
    assert "\n" not in str(caught.value)


def test_an_unknown_kind_cannot_be_built():
    with pytest.raises(ConfigError, match="no connector of kind"):
        build_connector(SourceConfig(name="x", kind="svn", url="u"))


def test_a_source_another_live_process_is_syncing_is_refused(ckb, tmp_path):
    import subprocess
    import sys

    from kbqa.store import ConnectorCursorRow
    from kbqa.store.db import process_identity

    connector = fake("alpha")
    sync(ckb, connector)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with ckb.store.session() as s:
            row = s.get(ConnectorCursorRow, "fake")
            row.owner = {**process_identity(), "pid": other.pid, "started": ""}
            s.commit()
        result = sync(ckb, connector)
        assert result.error.startswith("fake is being synced by another process (pid")
        assert connector.cursors == [None]  # not even listed
    finally:
        other.kill()
        other.wait()
    result = sync(ckb, connector)  # its owner is gone: the claim is taken over
    assert result.error == "" and connector.cursors == [None, "c1"]


def test_a_sources_credential_is_a_secret_masked_in_logs(tmp_path):
    toml = tmp_path / "kbqa.toml"
    toml.write_text('[[sources]]\nname = "w"\nkind = "jira"\nurl = "u"\ntoken_env = "T"\n')
    settings = Settings.load(toml, environ={"T": "jira-secret-token-42"})
    assert "jira-secret-token-42" in settings.secrets()


class Closing(FakeConnector):
    """A fake connector that records its close() and can fail its listing or be killed."""

    def __init__(self, how: str = "") -> None:
        super().__init__()
        self.put("1", RUNBOOK)
        self.how, self.closed = how, 0

    def list(self, cursor):
        if self.how == "error":
            raise KbqaError("the service said no")
        if self.how == "bug":
            raise ValueError("a connector's bug")
        return super().list(cursor)

    def fetch(self, item):
        if self.how == "kill":
            raise KeyboardInterrupt
        return super().fetch(item)

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("how", ["", "error", "bug", "kill"])
def test_a_connector_built_for_a_sync_is_closed_after_it(ckb, monkeypatch, how):
    from kbqa.ingest import connect

    built = Closing(how)
    monkeypatch.setattr(connect, "build_connector", lambda config, home: built)
    config = SourceConfig(name="fake", kind="fake", url="")
    if how == "kill":
        with pytest.raises(KeyboardInterrupt):
            connect.sync_one(config, ckb.settings, ckb.store, ckb.index_sources)
    else:
        result = connect.sync_one(config, ckb.settings, ckb.store, ckb.index_sources)
        assert bool(result.error) == bool(how)
    assert built.closed == 1
    # One the caller hands in stays open: the caller syncs with it again.
    given = Closing()
    assert sync(ckb, given).error == "" and given.closed == 0
