"""Connector permissions -> audiences (retrieval/access.py): the CLI sees everything, a public
document anyone, a restricted one only an audience holding one of its principals (a token's
`--principal`, a channel's `slack_channel_principals`); unknown access is restricted."""

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from kbqa.cli import cli
from kbqa.retrieval.access import Audience, Scope, allows_document
from kbqa.serve.auth import identify

ENG = {"connector": "wiki", "access": {"public": False, "groups": ["confluence-space:ENG"]}}
PUBLIC = {"connector": "wiki", "access": {"public": True, "groups": [], "users": []}}
ADA = {"connector": "t", "access": {"public": False, "groups": [], "users": ["jira-user:ada"]}}
UNKNOWN = {"connector": "site"}
BROKEN = {"connector": "wiki", "access": "confluence-space:ENG"}  # not a mapping
FILE = {"kind": "file"}


@pytest.mark.parametrize(
    ("audience", "principals", "seen"),
    [
        (Audience(), {}, {"eng", "public", "ada", "unknown", "broken", "file"}),
        (Audience.for_token("t", []), {}, {"public", "file"}),
        (Audience.for_token("t", [], ["confluence-space:ENG"]), {}, {"eng", "public", "file"}),
        (Audience.for_token("t", [], ["jira-user:ada"]), {}, {"ada", "public", "file"}),
        (
            Audience.for_token("t", [], [], admin=True),
            {},
            {"eng", "public", "ada", "unknown", "broken", "file"},
        ),
        (Audience.for_token("t", ["confluence:"]), {}, {"public"}),  # its patterns still apply
        (Audience(channel_id="C1", channel_name="eng"), {}, {"public", "file"}),
        (
            Audience(channel_id="C1", channel_name="eng"),
            {"eng": ["confluence-space:ENG"]},
            {"eng", "public", "file"},
        ),
        (
            Audience(channel_id="C1", channel_name="eng"),
            {"C1": ["jira-user:ada"]},
            {"ada", "public", "file"},
        ),
        (
            Audience(channel_id="C2", channel_name="x"),
            {"*": ["confluence-space:ENG"]},
            {"eng", "public", "file"},
        ),
        (
            Audience(channel_id="C2", public_only=True),
            {"*": ["confluence-space:ENG"]},
            {"public", "file"},
        ),
    ],
)
def test_who_sees_which_connector_document(audience, principals, seen):
    docs = {
        "eng": ("confluence:wiki/1", ENG),
        "public": ("confluence:wiki/2", PUBLIC),
        "ada": ("jira:t/OPS-1", ADA),
        "unknown": ("web:site/a", UNKNOWN),
        "broken": ("confluence:wiki/3", BROKEN),
        "file": ("/srv/docs/wiki/a.md", FILE),
    }
    scope = Scope(audience, (), {}, principals)
    got = {name for name, (uri, meta) in docs.items() if scope.allows_document(uri, meta)}
    if not audience.restricted:
        got = {name for name, (uri, meta) in docs.items() if allows_document(uri, meta, audience)}
    assert got == seen


def test_a_token_created_with_principals_carries_them_to_its_audience(tmp_path, kb):
    runner = CliRunner()
    env = {"KBQA_HOME": str(kb.settings.home)}
    result = runner.invoke(
        cli,
        ["token", "create", "--name", "eng-bot", "--principal", "confluence-space:ENG"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[0]
    listed = runner.invoke(cli, ["token", "list"], env=env)
    assert "confluence-space:ENG" in listed.output

    request = SimpleNamespace(
        headers={"authorization": f"Bearer {secret}"},
        cookies={},
        app=SimpleNamespace(state=SimpleNamespace(core=kb)),
    )
    caller = identify(request)
    assert caller.audience.principals == ("confluence-space:ENG",)
    bad = runner.invoke(cli, ["token", "create", "--name", "x", "--principal", "ENG"], env=env)
    assert bad.exit_code != 0 and "KIND:SCOPE" in str(bad.exception)
