"""The Confluence connector against a local Confluence (mock_confluence.py): a first sync equals
the fixture, an edit re-reads that page alone, a deletion or a lost permission takes a page out of
answers, a rate-limited sync finishes whole, and a restricted page reaches only its readers."""

import pytest

from conftest import HANDBOOK
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.confluence import build
from kbqa.ingest.connectors.confluence_markup import storage_to_markdown
from kbqa.render.model import Source

from .conftest import FAST_RETRY, ask, documents, seen_uris, sync, token_audience, uris, visible
from .mock_confluence import MockAttachment, MockConfluence, MockPage

DEPLOY = (
    "<h1>Deploy runbook</h1><p>Deploys go out with <strong>argo</strong>&nbsp;rollouts.</p>"
    '<ac:structured-macro ac:name="toc"/>'
    '<ac:structured-macro ac:name="warning"><ac:rich-text-body><p>Never deploy on a Friday '
    "afternoon.</p></ac:rich-text-body></ac:structured-macro>"
    '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>'
    "<ac:plain-text-body><![CDATA[argo rollouts promote api]]></ac:plain-text-body>"
    "</ac:structured-macro>"
    '<ac:structured-macro ac:name="expand"><ac:parameter ac:name="title">Rollback</ac:parameter>'
    "<ac:rich-text-body><p>Run argo rollouts undo api to roll back.</p></ac:rich-text-body>"
    "</ac:structured-macro>"
)
KEYS = "<h1>Rotating keys</h1><p>The vault master key is rotated by the sre rota quarterly.</p>"
ONBOARD = "<h1>Onboarding</h1><p>New engineers get a laptop and a buddy in week one.</p>"
WIFI = "<h1>Office wifi</h1><p>The guest wifi password is on the fridge in the kitchen.</p>"
SRE = "confluence-group:sre"


@pytest.fixture
def wiki():
    with MockConfluence(max_page=2) as server:
        server.add_space("ENG", groups=("eng",))
        server.add_space("PUB", anonymous=True)
        server.pages = {
            "101": MockPage("Deploy runbook", "ENG", DEPLOY),
            "102": MockPage("Rotating keys", "ENG", KEYS, parent="101", groups=["sre"]),
            "103": MockPage("Onboarding", "ENG", ONBOARD),
            "201": MockPage("Office wifi", "PUB", WIFI),
        }
        pdf = (HANDBOOK / "policies" / "expenses.pdf").read_bytes()
        server.attachments = {
            "att9": MockAttachment("103", "expenses.pdf", "application/pdf", pdf),
            "att8": MockAttachment("103", "logo.png", "image/png", b"\x89PNG"),
        }
        yield server


def connector(server, **options):
    config = SourceConfig(
        name="wiki",
        kind="confluence",
        url=server.url,
        scope=("ENG", "PUB"),
        token="api-token-123456",
        user="bot@acme.test",
        options=options,
    )
    return build(config, retry=FAST_RETRY)


ALL = {
    "confluence:wiki/101",
    "confluence:wiki/102",
    "confluence:wiki/103",
    "confluence:wiki/201",
    "confluence:wiki/103/attachments/att9",
}


def test_a_first_sync_equals_the_fixture(ckb, wiki):
    result = sync(ckb, connector(wiki))
    assert result.error == "" and result.failed == [] and result.complete
    docs = documents(ckb)
    assert set(docs) == ALL
    deploy = docs["confluence:wiki/101"]
    assert "argo rollouts promote api" in deploy["text"]
    assert "Never deploy on a Friday" in deploy["text"] and "roll back" in deploy["text"]
    meta = deploy["metadata"]
    assert meta["url"] == f"{wiki.url}/wiki/spaces/ENG/pages/101"
    assert meta["author"] == "557058:ada" and meta["updated_at"].startswith("2026-11-01")
    assert meta["access"]["groups"] == ["confluence-group:eng", "confluence-space:ENG"]
    assert docs["confluence:wiki/201"]["metadata"]["access"]["public"] is True
    # The child inherits its parent's space readers, narrowed by its own restriction.
    assert docs["confluence:wiki/102"]["metadata"]["access"]["groups"] == [SRE]
    assert "Owner: Finance" in docs["confluence:wiki/103/attachments/att9"]["text"]
    # Answers cite the page with a link back to it, and its age from the page's own edit time.
    hit = next(h for h in ask(ckb, "argo rollouts promote api").hits if h.uri.endswith("/101"))
    shown = Source(1, hit)
    assert shown.link == shown.where == meta["url"] and "ago" in shown.age()
    # Pages were listed two at a time (short pages), following `_links.next`.
    assert wiki.count(r"^/wiki/api/v2/pages$") == 3


def test_a_data_center_site_syncs_over_the_v1_api_with_a_bearer_token(ckb, wiki):
    config = SourceConfig(
        name="wiki",
        kind="confluence",
        url=wiki.url,
        scope=("ENG", "PUB"),
        token="api-token-123456",
        options={"deployment": "datacenter"},
    )
    result = sync(ckb, build(config, retry=FAST_RETRY))
    assert result.error == "" and result.failed == [] and uris(ckb) == ALL
    docs = documents(ckb)
    assert (
        docs["confluence:wiki/101"]["metadata"]["url"] == f"{wiki.url}/display/ENG/Deploy+runbook"
    )
    assert "argo rollouts promote api" in docs["confluence:wiki/101"]["text"]
    # No space permissions over Data Center's REST: the space's principal, narrowed by
    # restrictions (the child's inherited through `ancestors`).
    assert docs["confluence:wiki/201"]["metadata"]["access"]["groups"] == ["confluence-space:PUB"]
    assert docs["confluence:wiki/102"]["metadata"]["access"]["groups"] == [SRE]
    assert (
        wiki.count(r"^/wiki/") == 0 and wiki.count(r"^/rest/api/content$") == 3
    )  # ENG in two short pages


def test_an_edit_re_reads_and_re_embeds_that_page_alone(ckb, wiki):
    c = connector(wiki)
    sync(ckb, c)
    embedded, parsed = ckb.embedder.texts, ckb.parser.calls
    wiki.edit("103", "<h1>Onboarding</h1><p>New engineers now get two buddies in week one.</p>")
    wiki.clear_calls()
    result = sync(ckb, c)
    assert (result.report.updated, result.report.unchanged) == (1, 4)
    assert wiki.count(r"^/wiki/api/v2/pages/\d+$") == 1 and wiki.count("/download/") == 0
    assert ckb.parser.calls == parsed + 1 and 0 < ckb.embedder.texts - embedded <= 2
    assert "two buddies" in documents(ckb)["confluence:wiki/103"]["text"]


def test_a_deleted_page_and_a_lost_permission_leave_the_answers(ckb, wiki):
    c = connector(wiki)
    sync(ckb, c)
    anyone = token_audience()
    assert "confluence:wiki/201" in visible(ckb, anyone)
    del wiki.pages["103"]
    wiki.pages["201"].users = ["557058:ada"]  # the public page is now restricted to one person
    result = sync(ckb, c)
    assert result.report.removed == 2  # the page and its attachment
    assert uris(ckb) == ALL - {"confluence:wiki/103", "confluence:wiki/103/attachments/att9"}
    answer = ask(ckb, "what is the guest wifi password?", anyone)
    assert "confluence:wiki/201" not in seen_uris(answer)
    ada = token_audience("confluence-user:557058:ada")
    assert "confluence:wiki/201" in seen_uris(ask(ckb, "guest wifi password fridge", ada))


def test_a_rate_limited_sync_finishes_late_but_whole(ckb, wiki):
    wiki.fail(r"^/wiki/api/v2/pages$", 429, times=2, headers={"Retry-After": "1"})
    wiki.fail(r"/content/search$", 429, times=3)  # no Retry-After: backs off
    wiki.fail(r"^/wiki/api/v2/pages/101$", 503, times=2)
    c = connector(wiki)
    result = sync(ckb, c)
    assert result.error == "" and result.failed == [] and uris(ckb) == ALL
    assert c.api.http.waited > 0 and wiki.faults == []  # every fault was served


def test_restrictions_read_page_by_page_give_the_same_access(ckb, wiki):
    sync(ckb, connector(wiki))
    bulk = {u: d["metadata"]["access"] for u, d in documents(ckb).items()}
    wiki.clear_calls()
    c = connector(wiki, restrictions="per-page")
    listing = c.list(None)
    assert {f"confluence:wiki/{i.id}": i.access.as_dict() for i in listing.items} == bulk
    assert wiki.count("/restriction/byOperation/read$") == 4


def test_a_page_that_keeps_failing_is_named_and_the_rest_is_stored(ckb, wiki):
    wiki.fail(r"^/wiki/api/v2/pages/103$", 500, times=50)
    result = sync(ckb, connector(wiki))
    assert [name for name, _ in result.failed] == ["wiki: Onboarding"]
    assert "HTTP 500" in result.failed[0][1] and uris(ckb) == ALL - {"confluence:wiki/103"}


def test_a_space_that_cannot_be_listed_prunes_nothing(ckb, wiki):
    c = connector(wiki)
    sync(ckb, c)
    wiki.fail(r"^/wiki/api/v2/pages$", 400, times=1, body={"errors": [{"title": "bad"}]})
    result = sync(ckb, c)
    assert not result.complete and result.report.removed == 0 and uris(ckb) == ALL
    assert result.status == "partial"


def test_a_restricted_page_reaches_only_its_readers(ckb, wiki):
    sync(ckb, connector(wiki))
    question = "who rotates the vault master key?"
    readers = {
        "nobody": token_audience(),
        "eng": token_audience("confluence-space:ENG"),
        "sre": token_audience(SRE),
        "admin": token_audience("*"),
    }
    seen = {who: seen_uris(ask(ckb, question, a)) for who, a in readers.items()}
    assert "confluence:wiki/102" not in seen["nobody"] | seen["eng"]
    assert "confluence:wiki/102" in seen["sre"] and "confluence:wiki/102" in seen["admin"]
    assert visible(ckb, readers["nobody"]) == {"confluence:wiki/201"}
    assert "confluence:wiki/101" in visible(ckb, readers["eng"])
    assert "confluence:wiki/102" in seen_uris(ask(ckb, question))  # the CLI sees everything


def test_wrong_credentials_fail_in_one_line_without_the_token(ckb, wiki):
    config = SourceConfig(
        name="wiki", kind="confluence", url=wiki.url, token="wrong-token-999", user="x@y"
    )
    result = sync(ckb, build(config, retry=FAST_RETRY))
    assert "HTTP 401" in result.error and "wrong-token" not in result.error
    assert "\n" not in result.error and result.status == "failed"


def test_storage_format_macros_flatten_to_markdown():
    text = storage_to_markdown(
        "<h2>Ports</h2><table><tr><th>env</th><th>port</th></tr><tr><td>staging</td>"
        "<td>8443</td></tr></table><ul><li>one<ul><li>two</li></ul></li></ul>"
        '<ac:structured-macro ac:name="info"><ac:parameter ac:name="title">Heads up</ac:parameter>'
        "<ac:rich-text-body><p>Read this.</p></ac:rich-text-body></ac:structured-macro>"
        '<p>See <ac:link><ri:page ri:content-title="Runbook"/></ac:link> now.</p>'
    )
    assert "## Ports\n\n| env | port |\n| --- | --- |\n| staging | 8443 |" in text
    assert "- one\n  - two" in text and "> **Heads up:** Read this." in text
    assert "See Runbook now." in text
