"""The Jira connector against a local Jira (mock_jira.py): issues with all their comments as one
document, an edit or new comment re-reads that issue alone, a deletion or a security level takes
an issue out of answers, rate limits and an expired page token end whole or prune nothing."""

import pytest

from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.jira import adf_to_markdown, build

from .conftest import FAST_RETRY, ask, documents, seen_uris, sync, token_audience, uris, visible
from .mock_jira import MockIssue, MockJira, adf


@pytest.fixture
def jira():
    with MockJira(max_page=2, comment_page=2) as server:
        server.issues = {
            "OPS-1": MockIssue(
                "OPS",
                "Disk full on the build runners",
                adf("The build runners ran out of disk during the nightly job."),
                comments=[
                    ("Ada", "Cleared the docker cache with docker system prune."),
                    ("Linus", "Added a cron job to prune images weekly."),
                    ("Grace", "Root cause: the artifact cache was never expired."),
                ],
            ),
            "OPS-2": MockIssue("OPS", "Rotate the TLS certificate", adf("Certbot renews it.")),
            "OPS-3": MockIssue(
                "OPS",
                "Payroll export credentials",
                adf("The payroll export uses the hr-sftp account with key rotation monthly."),
                security="HR only",
            ),
            "DOC-1": MockIssue("DOC", "Public docs typo", adf("Fix the typo on the install page.")),
            "SEC-9": MockIssue("SEC", "Not synced", adf("Outside the configured projects.")),
        }
        yield server


def connector(server, **options):
    config = SourceConfig(
        name="tracker",
        kind="jira",
        url=server.url,
        scope=("OPS", "DOC"),
        token="api-token-123456",
        user="bot@acme.test",
        options={"public_projects": ["DOC"], **options},
    )
    return build(config, retry=FAST_RETRY)


ALL = {f"jira:tracker/{k}" for k in ("OPS-1", "OPS-2", "OPS-3", "DOC-1")}


def test_a_first_sync_equals_the_fixture_with_every_comment(ckb, jira):
    result = sync(ckb, connector(jira))
    assert result.error == "" and result.failed == [] and uris(ckb) == ALL
    docs = documents(ckb)
    ops1 = docs["jira:tracker/OPS-1"]
    assert ops1["title"] == "OPS-1: Disk full on the build runners"
    for words in ("ran out of disk", "docker system prune", "prune images", "never expired"):
        assert words in ops1["text"]  # the third comment came from the comment endpoint
    assert jira.count(r"/comment$") == 1
    meta = ops1["metadata"]
    assert meta["url"] == f"{jira.url}/browse/OPS-1" and meta["author"] == "Grace Hopper"
    assert meta["updated_at"] == "2026-11-01T09:00:00.000+00:00"
    assert meta["access"]["groups"] == ["jira-project:OPS"]
    assert docs["jira:tracker/OPS-3"]["metadata"]["access"]["groups"] == [
        "jira-security:OPS:HR only"
    ]
    assert docs["jira:tracker/DOC-1"]["metadata"]["access"]["public"] is True
    assert jira.count(r"/search/jql$") == 2  # two pages of two, the second short


def test_a_data_center_jira_syncs_over_rest_v2_with_wiki_markup(ckb, jira):
    jira.v2 = True
    result = sync(ckb, connector(jira, deployment="datacenter"))
    assert result.error == "" and result.failed == [] and uris(ckb) == ALL
    text = documents(ckb)["jira:tracker/OPS-1"]["text"]
    assert "ran out of disk" in text and "never expired" in text
    assert jira.count(r"^/rest/api/2/search$") == 2 and jira.count(r"^/rest/api/3/") == 0


def test_a_new_comment_re_reads_that_issue_alone(ckb, jira):
    c = connector(jira)
    sync(ckb, c)
    jira.comment("OPS-2", "Ada", "Certbot failed once: the DNS challenge timed out.")
    jira.clear_calls()
    parsed = ckb.parser.calls
    result = sync(ckb, c)
    assert (result.report.updated, result.report.unchanged) == (1, 3)
    assert jira.count(r"/issue/") == 1 and ckb.parser.calls == parsed + 1
    assert "DNS challenge" in documents(ckb)["jira:tracker/OPS-2"]["text"]


def test_a_deleted_issue_and_a_new_security_level_leave_the_answers(ckb, jira):
    c = connector(jira)
    sync(ckb, c)
    ops = token_audience("jira-project:OPS")
    assert "jira:tracker/OPS-2" in visible(ckb, ops)
    del jira.issues["OPS-1"]
    jira.issues["OPS-2"].security = "Staff"
    result = sync(ckb, c)
    assert result.report.removed == 1 and "jira:tracker/OPS-1" not in uris(ckb)
    assert "jira:tracker/OPS-2" not in seen_uris(ask(ckb, "TLS certificate certbot", ops))
    staff = token_audience("jira-security:OPS:Staff")
    assert "jira:tracker/OPS-2" in seen_uris(ask(ckb, "TLS certificate certbot", staff))


def test_an_expired_page_token_prunes_nothing_and_the_next_sync_is_whole(ckb, jira):
    c = connector(jira)
    sync(ckb, c)
    jira.expire_tokens = 1
    del jira.issues["DOC-1"]
    result = sync(ckb, c)
    assert not result.complete and result.report.removed == 0 and uris(ckb) == ALL
    assert "expired" in result.failed[0][1]
    result = sync(ckb, c)
    assert result.complete and uris(ckb) == ALL - {"jira:tracker/DOC-1"}


def test_a_rate_limited_sync_finishes_late_but_whole(ckb, jira):
    jira.fail(r"/search/jql$", 429, times=2, headers={"Retry-After": "2"})
    jira.fail(r"/issue/OPS-1$", 429, times=2)
    jira.fail(r"/issue/OPS-2$", 502, times=1)
    c = connector(jira)
    result = sync(ckb, c)
    assert result.error == "" and result.failed == [] and uris(ckb) == ALL
    assert c.api.http.waited > 0


def test_a_security_level_issue_reaches_only_its_level(ckb, jira):
    sync(ckb, connector(jira))
    question = "which account does the payroll export use?"
    target = "jira:tracker/OPS-3"
    assert target not in seen_uris(ask(ckb, question, token_audience("jira-project:OPS")))
    assert target not in seen_uris(ask(ckb, question, token_audience()))
    assert target in seen_uris(ask(ckb, question, token_audience("jira-security:OPS:HR only")))
    assert visible(ckb, token_audience()) == {"jira:tracker/DOC-1"}


def test_adf_to_markdown_keeps_structure():
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 1},
                "content": [{"type": "text", "text": "Fix"}],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "one"}]}
                        ],
                    },
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {"type": "text", "text": "two", "marks": [{"type": "code"}]}
                                ],
                            }
                        ],
                    },
                ],
            },
            {
                "type": "codeBlock",
                "attrs": {"language": "sh"},
                "content": [{"type": "text", "text": "make deploy"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "mention", "attrs": {"text": "@ada"}},
                    {"type": "text", "text": " see "},
                    {"type": "inlineCard", "attrs": {"url": "https://x.test/1"}},
                ],
            },
        ],
    }
    text = adf_to_markdown(doc)
    assert "### Fix" in text and "- one\n- `two`" in text
    assert "```sh\nmake deploy\n```" in text and "@ada see https://x.test/1" in text


def test_kills_mid_sync_then_a_re_run_lose_and_duplicate_nothing(ckb, jira, monkeypatch):
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import faults as bench

    class Killed(BaseException):
        pass

    c = connector(jira)
    real_fetch = c.fetch
    for n in (1, 3, 2):  # the first, the last, a middle item
        calls = {"n": 0}

        def fetch(item, n=n, calls=calls):
            calls["n"] += 1
            if calls["n"] == n:
                raise Killed
            return real_fetch(item)

        monkeypatch.setattr(c, "fetch", fetch)
        with pytest.raises(Killed):
            sync(ckb, c)
        monkeypatch.undo()
        assert bench.check(ckb) == []
        jira.comment("OPS-2", "Ada", f"Renewal number {n} went fine.")
    result = sync(ckb, c)
    assert result.failed == [] and uris(ckb) == ALL and bench.check(ckb) == []
    assert "Renewal number 2" in documents(ckb)["jira:tracker/OPS-2"]["text"]
