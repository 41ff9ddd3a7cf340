"""The Google Drive connector against Drive v3 on 127.0.0.1 (mock_gdrive.py): the folders
listed once, then only the changes log; exports and downloads; permissions as access."""

import pytest

from kbqa.errors import ConfigError
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.gdrive import build, csv_markdown

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
from .helpers_web import Killed, kill_at, record_waits, reference, restarted, stored
from .mock_gdrive import TOKEN, MockDrive, perm

FILES = ("doc-onboard", "sheet-rota", "slides-q3", "pdf-exp", "md-secret")
BOB, CAROL = (
    token_audience("gdrive-user:bob@acme.com"),
    token_audience("gdrive-user:carol@acme.com"),
)
STAFF = token_audience("gdrive-domain:acme.com")


@pytest.fixture
def drive():
    with MockDrive() as server:
        yield server


def connect(drive, token=TOKEN, **options):
    config = SourceConfig(
        name="drive",
        kind="gdrive",
        url=drive.url,
        scope=("fld-eng",),
        token=token,
        options=options,
    )
    connector = build(config)
    connector.waits = record_waits(connector.gateway.http)
    return connector, config


def uri(fid):
    return f"gdrive:drive/{fid}"


def test_a_first_sync_stores_the_scope_folders_files(ckb, drive):
    connector, config = connect(drive)
    result = sync(ckb, connector, config)
    assert result.error == "" and result.complete
    # the logo (no parser) and the Marketing folder (out of scope) are left out
    assert uris(ckb) == {uri(f) for f in FILES}
    docs = documents(ckb)
    onboarding = docs[uri("doc-onboard")]
    assert "VPN account" in onboarding["text"] and onboarding["title"] == "Onboarding guide"
    meta = onboarding["metadata"]
    assert meta["url"] == "https://drive.google.com/file/d/doc-onboard/view"
    assert meta["updated_at"] == "2026-11-02T09:30:00.000Z" and meta["author"] == "Owen Owner"
    assert meta["access"]["groups"] == ["gdrive-domain:acme.com"]
    # the sheet, exported as CSV, is read as a table: each row with its column names
    assert "week: 49; primary: Alice Moreau" in docs[uri("sheet-rota")]["text"]
    assert "$750" in docs[uri("pdf-exp")]["text"]
    assert "walrus-17" in docs[uri("md-secret")]["text"]
    assert cursor(ckb, "drive").startswith('{"token": "1"')
    assert drive.paths("/drive/v3/files/sheet-rota/export") == ["/drive/v3/files/sheet-rota/export"]
    assert drive.paths("/drive/v3/files/png-logo") == []


def test_later_syncs_read_only_the_changes_and_an_edit_reparses_that_file(ckb, drive):
    connector, config = connect(drive)
    sync(ckb, connector, config)
    parsed, embedded = ckb.parser.calls, ckb.embedder.texts
    drive.clear_calls()
    sync(ckb, connector, config)
    assert drive.paths() == ["/drive/v3/changes"]
    assert (ckb.parser.calls, ckb.embedder.texts) == (parsed, embedded)
    drive.edit("doc-onboard", "# Onboarding\n\nNew engineers now get a desk on the fourth floor.\n")
    drive.clear_calls()
    result = sync(ckb, connector, config)
    assert result.report.updated == 1 and ckb.parser.calls == parsed + 1
    assert drive.paths() == ["/drive/v3/changes", "/drive/v3/files/doc-onboard/export"]
    assert "fourth floor" in documents(ckb)[uri("doc-onboard")]["text"]


def test_deleted_trashed_and_unshared_files_leave_the_answers(ckb, drive):
    connector, config = connect(drive)
    sync(ckb, connector, config)
    assert uri("md-secret") in seen_uris(ask(ckb, "break-glass root password envelope", BOB))
    drive.delete("slides-q3")
    drive.trash("sheet-rota")
    drive.share("md-secret", [perm("user", "carol@acme.com")])
    result = sync(ckb, connector, config)
    assert result.error == "" and result.report.removed == 2
    assert uris(ckb) == {uri(f) for f in ("doc-onboard", "pdf-exp", "md-secret")}
    assert uri("md-secret") not in seen_uris(ask(ckb, "break-glass root password envelope", BOB))
    assert uri("md-secret") not in visible(ckb, BOB)
    assert uri("md-secret") in seen_uris(ask(ckb, "break-glass root password envelope", CAROL))


def test_an_expired_page_token_lists_everything_again_and_says_so(ckb, drive):
    connector, config = connect(drive)
    sync(ckb, connector, config)
    drive.delete("slides-q3")
    drive.expire_tokens()
    listing = connector.list(cursor(ckb, "drive"))
    assert listing.complete and "listed again" in listing.problems[0][1]
    result = sync(ckb, connector, config)
    assert result.error == "" and uri("slides-q3") not in uris(ckb)


def test_a_folder_moved_into_scope_brings_its_files(ckb, drive):
    connector, config = connect(drive)
    sync(ckb, connector, config)
    drive.files["fld-other"]["parents"] = ["fld-eng"]
    drive.changes.append(("fld-other", False))
    sync(ckb, connector, config)
    assert uri("doc-other") in uris(ckb)


@pytest.mark.parametrize("at", [2, 5])
def test_a_kill_mid_sync_and_a_rerun_lose_and_duplicate_nothing(ckb, drive, at, tmp_path):
    connector, config = connect(drive)
    kill_at(connector, at)
    with pytest.raises(Killed):
        sync(ckb, connector, config)
    again = restarted(ckb)
    result = sync(again, *connect(drive))
    assert result.error == "" and uris(again) == {uri(f) for f in FILES}
    assert stored(again) == reference(ckb, tmp_path / "clean", *connect(drive))


def test_a_rate_limited_drive_is_read_late_but_whole(ckb, drive):
    connector, config = connect(drive)
    drive.fail("/drive/v3/files?q=", 429, {"Retry-After": "11"})
    limited = (
        b'{"error": {"code": 403, "message": "User Rate Limit Exceeded", '
        b'"errors": [{"reason": "userRateLimitExceeded"}]}}'
    )
    drive.fail("/drive/v3/files/doc-onboard/export", 403, body=limited, times=2)
    result = sync(ckb, connector, config)
    assert result.error == "" and result.complete and uris(ckb) == {uri(f) for f in FILES}
    assert connector.waits[0] == 11.0 and len(connector.waits) == 3


def test_a_restricted_file_never_reaches_an_audience_that_could_not_open_it(ckb, drive):
    connector, config = connect(drive)
    sync(ckb, connector, config)
    for probe in (STAFF, channel_audience(), token_audience("gdrive-group:eng@acme.com")):
        for question in ("break-glass root password envelope", "expenses stipend", "on-call rota"):
            assert uri("md-secret") not in seen_uris(ask(ckb, question, probe))
    assert visible(ckb, STAFF) == {uri("doc-onboard")}
    assert visible(ckb, channel_audience()) == set()  # "anyone with the link" is not public
    assert visible(ckb, token_audience("gdrive-group:oncall@acme.com")) == {uri("sheet-rota")}


def test_anyone_is_public_only_when_the_source_says_so(ckb, drive):
    connector, config = connect(drive, anyone_is_public=True)
    sync(ckb, connector, config)
    assert visible(ckb, channel_audience()) == {uri("pdf-exp")}


def test_a_refused_token_is_one_line_without_the_token(ckb, drive):
    connector, config = connect(drive, token="ya29.wrong-token-value")
    result = sync(ckb, connector, config)
    assert "HTTP 401" in result.error and "wrong-token" not in result.error
    assert "\n" not in result.error


def test_a_source_without_folders_is_a_config_error():
    with pytest.raises(ConfigError, match="scope must name the Drive folder"):
        build(SourceConfig(name="drive", kind="gdrive", url="", token="t"))


def test_a_sheet_becomes_a_markdown_table():
    assert (
        csv_markdown('a,b\n1,"x|y"\n\n2\n') == "| a | b |\n| --- | --- |\n| 1 | x\\|y |\n| 2 |  |\n"
    )


def test_permissions_left_out_of_the_listing_are_read_per_file(ckb):
    with MockDrive(shared_drive=True) as drive:
        connector, config = connect(drive)
        sync(ckb, connector, config)
        assert len(drive.paths("/drive/v3/files/md-secret/permissions")) == 1
        assert visible(ckb, BOB) == {uri("md-secret")}
        assert visible(ckb, STAFF) == {uri("doc-onboard")}


# Who may open each stored file at Drive, written from the fixture's permissions by hand.
OPENS = {
    "doc-onboard": {"staff", "owner"},
    "sheet-rota": {"oncall", "owner"},
    "slides-q3": {"alice", "owner"},
    "pdf-exp": {"owner"},  # "anyone with the link" is not public by default
    "md-secret": {"bob", "owner"},
}
PROBES = {
    "staff": STAFF,
    "oncall": token_audience("gdrive-group:oncall@acme.com"),
    "alice": token_audience("gdrive-user:alice@acme.com"),
    "bob": BOB,
    "owner": token_audience("gdrive-user:owner@acme.com"),
    "channel": channel_audience(),
}
QUESTIONS = (
    "break-glass root password envelope",
    "who is primary on call in week 49",
    "heron scheduler pelican queue roadmap",
    "home office stipend expenses",
    "VPN account service desk laptop buddy",
    "what is stored in walrus-17",
)


def test_no_probe_sees_a_file_its_audience_could_not_open_at_drive(ckb, drive, caplog):
    connector, config = connect(drive)
    sync(ckb, connector, config)
    caplog.set_level("DEBUG")
    probes = 0
    for who, audience in PROBES.items():
        allowed = {uri(f) for f, people in OPENS.items() if who in people}
        assert visible(ckb, audience) == allowed, who
        for question in QUESTIONS:
            answer = ask(ckb, question, audience)
            probes += 1
            assert seen_uris(answer) <= allowed, (who, question)
            if "md-secret" not in {f for f, p in OPENS.items() if who in p}:
                assert "walrus-17" not in answer.text
    assert probes == 36
    assert uri("md-secret") in seen_uris(ask(ckb, QUESTIONS[0], BOB))  # the owner's view works
    assert "walrus-17" not in caplog.text


def in_scope(drive) -> set[str]:
    """The uris a whole sync must hold: readable files under the scope folders, not trashed."""
    folders, changed = {"fld-eng"}, True
    while changed:
        more = {
            f["id"]
            for f in drive.files.values()
            if f["mimeType"].endswith("folder") and folders & set(f["parents"])
        }
        changed, folders = not more <= folders, folders | more
    return {
        uri(f["id"])
        for f in drive.files.values()
        if folders & set(f["parents"])
        and not f["trashed"]
        and not f["mimeType"].endswith("folder")
        and f["id"] != "png-logo"
    }


@pytest.mark.slow
def test_ten_kills_of_a_changes_sync_lose_and_duplicate_nothing(ckb, drive, monkeypatch):
    import random

    from kbqa import faults

    from .helpers_web import faults_bench

    bench = faults_bench()
    rng = random.Random(3)
    connector, config = connect(drive)
    sync(ckb, connector, config)
    real_point, real_fetch = faults.point, connector.fetch
    for trial in range(10):
        drive.edit("doc-onboard", f"# Onboarding\n\nRevision {trial}: desks on floor {trial}.\n")
        drive.add(
            f"doc-new{trial}",
            f"New {trial}",
            "application/vnd.google-apps.document",
            rng.choice(["fld-eng", "fld-pol"]),
            f"# New {trial}\n\nAdded in trial {trial}.\n",
            [perm("domain", "acme.com")],
        )
        if trial == 3:
            drive.delete("slides-q3")
        if trial == 6:
            drive.share("md-secret", [perm("user", "carol@acme.com")])
        if trial % 2 == 0:
            monkeypatch.setattr(connector, "fetch", _dies_at(real_fetch, 1 + trial // 2 % 2))
        else:
            stage = ("parse", "embed", "commit", "committed", "sync-cursor")[trial // 2]
            monkeypatch.setattr(faults, "point", _point_dies_at(real_point, stage))
        before = cursor(ckb, "drive")
        with pytest.raises(Killed):
            sync(ckb, connector, config)
        monkeypatch.undo()
        assert cursor(ckb, "drive") == before, trial  # never ahead of the stored items
        assert bench.check(ckb) == [], trial
        result = sync(ckb, connector, config)
        assert result.error == "" and result.failed == [], (trial, result)
        assert uris(ckb) == in_scope(drive), trial
        assert f"floor {trial}." in documents(ckb)[uri("doc-onboard")]["text"]
    assert visible(ckb, BOB) == set() and uri("md-secret") in visible(ckb, CAROL)
    clean = type(ckb)(
        ckb.settings.replace(home=ckb.settings.home.parent / "clean"), embedder=ckb.embedder
    )
    sync(clean, *connect(drive))
    assert bench.check(ckb, clean) == []


def _dies_at(fetch, n):
    calls = [0]

    def dying(item):
        calls[0] += 1
        if calls[0] == n:
            raise Killed(f"fetch {n}")
        return fetch(item)

    return dying


def _point_dies_at(point, stage):
    def dying(name):
        if name == stage:
            raise Killed(stage)
        point(name)

    return dying


def test_a_deleted_subfolder_takes_its_files_and_a_renamed_scope_folder_changes_nothing(ckb, drive):
    connector, config = connect(drive)
    sync(ckb, connector, config)
    drive.files["fld-eng"]["name"] = "Engineering (renamed)"
    drive.changes.append(("fld-eng", False))
    drive.clear_calls()
    result = sync(ckb, connector, config)
    assert result.error == "" and drive.paths("/drive/v3/files") == []  # not listed again
    del drive.files["fld-pol"]  # deleted with what it holds; Drive logs the folder alone
    del drive.files["pdf-exp"], drive.files["md-secret"]
    drive.changes.append(("fld-pol", True))
    result = sync(ckb, connector, config)
    assert result.error == "" and uris(ckb) == {
        uri(f) for f in ("doc-onboard", "sheet-rota", "slides-q3")
    }


def test_a_download_is_streamed_and_capped_at_the_file_limit(ckb, drive, monkeypatch, tmp_path):
    import kbqa.ingest.connectors.gdrive as gdrive

    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(gdrive.tempfile, "tempdir", str(temporary))
    monkeypatch.setattr(gdrive, "MAX_BYTES", 1000)
    drive.files["pdf-exp"]["size"] = "10"  # the listing says small; the body is not
    connector, config = connect(drive)
    result = sync(ckb, connector, config)
    assert [name for name, _ in result.failed] == ["drive: expenses.pdf"]
    assert "over 1000 bytes" in result.failed[0][1]
    assert uri("pdf-exp") not in uris(ckb) and uri("doc-onboard") in uris(ckb)
    assert list(temporary.iterdir()) == []  # no partial download left behind
