"""A real log: KBQA_HOME/logs/kbqa.log and stderr by -v/--log-level, configured by the command
line only, and no secret in any repr or log line."""

import logging

import pytest
from click.testing import CliRunner

from kbqa import logs
from kbqa.app import KnowledgeBase
from kbqa.cli import cli
from kbqa.redact import redact
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings

BOT, APP, SIGNING = "xoxb-1234-5678-abcdefSECRET", "xapp-1-A0-99-deadbeefSECRET", "s1gn1ngSECRET"
API_TOKEN = "kbqa_Zm9vYmFyYmF6cXV4SECRETSECRET"
DB = "postgresql://kbqa:hunter2SECRET@db.internal:5432/kbqa"


@pytest.fixture(autouse=True)
def _no_leftover_handlers():
    yield
    logs.unconfigure()


@pytest.fixture
def ingested(tmp_path, docs, monkeypatch):
    home = tmp_path / "home"
    kb = KnowledgeBase(Settings(home=home), embedder=HashEmbedder())
    kb.ingest([docs])
    # The CLI builds its own core: give it the same fast embedder.
    monkeypatch.setattr("kbqa.models.make_embedder", lambda *a, **k: HashEmbedder())
    return home


def test_an_index_repair_is_in_the_log_file_and_with_v_on_stderr(ingested):
    (ingested / "index.faiss").unlink()
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(ingested), "-v", "ask", "--extractive", "port?"])
    assert result.exit_code == 0, result.output
    assert "out of step with the database" in result.stderr  # -v: info and up on stderr
    log = (ingested / "logs" / "kbqa.log").read_text()
    assert "out of step with the database" in log and "repairing" in log


def test_without_v_warnings_reach_stderr_and_info_stays_in_the_file(ingested):
    (ingested / "index.faiss").unlink()
    result = CliRunner().invoke(cli, ["--home", str(ingested), "ask", "--extractive", "port?"])
    assert result.exit_code == 0, result.output
    assert "out of step" in result.stderr  # a repair is a warning
    assert "search snapshot of" not in result.stderr
    log = (ingested / "logs" / "kbqa.log").read_text()
    assert "out of step" in log and "search snapshot of" in log  # info lines: the file only


def test_a_bad_log_level_is_a_clear_error(ingested):
    result = CliRunner().invoke(cli, ["--home", str(ingested), "--log-level", "nonsense", "status"])
    assert result.exit_code != 0 and "--log-level" in str(result.exception or result.output)


def test_the_library_never_configures_handlers(settings, docs):
    before = list(logging.getLogger().handlers)
    KnowledgeBase(settings, embedder=HashEmbedder()).ingest([docs])
    assert logging.getLogger().handlers == before


def test_settings_repr_masks_every_secret():
    settings = Settings(
        slack_bot_token=BOT,
        slack_app_token=APP,
        slack_signing_secret=SIGNING,
        server_token=API_TOKEN,
        database_url=DB,
    )
    shown = repr(settings) + str(settings)
    assert "SECRET" not in shown
    assert "postgresql://kbqa:***@db.internal:5432/kbqa" in shown
    assert set(settings.secrets()) == {BOT, APP, SIGNING, API_TOKEN, "hunter2SECRET"}


def test_every_log_line_is_redacted(tmp_path):
    settings = Settings(home=tmp_path, slack_signing_secret=SIGNING, database_url=DB)
    path = logs.configure(tmp_path, "CRITICAL", "DEBUG", settings.secrets())
    log = logging.getLogger("kbqa.test")
    log.warning("settings are %r", settings)
    log.error("Slack said no to %s and %s (Authorization: Bearer %s)", BOT, APP, API_TOKEN)
    log.info("signing with %s on %s", SIGNING, DB)
    try:
        raise RuntimeError(f"connect to {DB} failed with {BOT}")
    except RuntimeError:
        log.exception("a traceback")
    logs.unconfigure()
    text = path.read_text()
    assert text.count("\n") >= 5 and "a traceback" in text and "Traceback" in text
    assert "SECRET" not in text and "hunter2" not in text


def test_redact_keeps_ordinary_text():
    text = "see https://larkspur.slack.com/archives/C1/p1 and port 7300, run kbqa_status"
    assert redact(text) == text


def test_verbose_logging_keeps_the_faiss_loader_at_warning(tmp_path):
    # faiss's loader logs each CPU build it tries (ModuleNotFoundError lines): not a failure.
    try:
        logs.configure(tmp_path, "DEBUG", "DEBUG")
        assert logging.getLogger("faiss.loader").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("kbqa.app").isEnabledFor(logging.DEBUG)
    finally:
        logs.unconfigure()
