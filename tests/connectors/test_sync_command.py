"""`kbqa sync [NAME…]` in process: every [[sources]] entry of kbqa.toml (or those named) synced,
one summary line each like the ingest's; an unknown name, a missing credential and a failing
source are one line each; `kbqa sync slack --channel` still reaches the Slack sync."""

import pytest
from click.testing import CliRunner

from kbqa.cli import cli
from kbqa.errors import KbqaError

from .mock_jira import MockIssue, MockJira, adf


@pytest.fixture
def jira():
    with MockJira() as server:
        server.issues = {
            "OPS-1": MockIssue("OPS", "Disk full", adf("The runners ran out of disk.")),
            "OPS-2": MockIssue("OPS", "TLS", adf("Certbot renews the certificate.")),
        }
        yield server


@pytest.fixture
def workdir(tmp_path, monkeypatch, jira):
    (tmp_path / "kbqa.toml").write_text(
        'embedding_model = "hash"\n'
        f'[[sources]]\nname = "tracker"\nkind = "jira"\nurl = "{jira.url}"\nscope = ["OPS"]\n'
        'token_env = "JIRA_TOKEN"\nuser_env = "JIRA_USER"\n'
        f'[[sources]]\nname = "down"\nkind = "jira"\nurl = "http://127.0.0.1:9"\n'
        'token_env = "JIRA_TOKEN"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KBQA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JIRA_TOKEN", "api-token-123456")
    monkeypatch.setenv("JIRA_USER", "bot@acme.test")
    return tmp_path


def test_sync_named_sources_prints_a_line_each(workdir):
    result = CliRunner().invoke(cli, ["sync", "tracker"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("tracker: listed 2 · added 2 · updated 0 · unchanged 0")
    again = CliRunner().invoke(cli, ["sync", "tracker"])
    assert "listed 2 · added 0 · updated 0 · unchanged 2" in again.stdout


def test_sync_everything_reports_a_failing_source_and_exits_non_zero(workdir, monkeypatch):
    monkeypatch.setattr(
        "kbqa.ingest.connectors.http.RetryPolicy.__init__.__defaults__", (1, 0.0, 0.0, 0.0)
    )
    result = CliRunner().invoke(cli, ["sync"])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("tracker: listed 2 · added 2")
    assert lines[1].startswith("down: failed: http://127.0.0.1:9/rest/api/3/search/jql")
    assert "api-token" not in result.stdout


def test_an_unknown_name_and_a_missing_credential_are_one_line(workdir, monkeypatch):
    result = CliRunner().invoke(cli, ["sync", "nope"])
    assert isinstance(result.exception, KbqaError)
    assert str(result.exception) == "no source named nope in kbqa.toml (there are: tracker, down)"
    monkeypatch.delenv("JIRA_TOKEN")
    result = CliRunner().invoke(cli, ["sync", "tracker"])
    assert "tracker: failed: source 'tracker': set JIRA_TOKEN" in result.stdout


def test_sync_slack_still_needs_its_channels(workdir):
    result = CliRunner().invoke(cli, ["sync", "slack"])
    assert "needs --channel" in str(result.exception)
    result = CliRunner().invoke(cli, ["sync", "slack", "--channel", "ops"])
    assert "SLACK_BOT_TOKEN is not set" in str(result.exception)  # the Slack sync's own first
