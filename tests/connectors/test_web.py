"""The web connector against a docs site on 127.0.0.1 (mock_web.py): robots.txt and its
Crawl-delay, the gzipped sitemap index or the link crawl, conditional GETs, the main text, and
the connector contract (edits, deletions, kills, rate limits, access)."""

import time

import pytest

from kbqa.errors import ConfigError
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.web import build

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
from .mock_web import EPOCH, MockSite, page

PAGES = (
    "/docs/",
    "/docs/install",
    "/docs/install/advanced",
    "/docs/deploy.html",
    "/docs/old",
    "/docs/guide.pdf",
)
NEW_DEPLOY = (
    "<html><head><title>Deploying Lark</title></head><body><main><h1>Deploying Lark</h1>"
    "<p>Deploys now go through the red-black pipeline with a five percent canary for an hour."
    "</p></main></body></html>"
)


@pytest.fixture(params=[True, False], ids=["sitemap", "links"])
def any_site(request):
    """The site with its sitemap, and without (the connector follows links)."""
    with MockSite(sitemap=request.param) as server:
        yield server


@pytest.fixture
def site():
    with MockSite() as server:
        yield server


def connect(site, **options):
    config = SourceConfig(name="docs", kind="web", url=site.url + "/docs/", options=options)
    connector = build(config)
    connector.pauses = []
    connector.pause = connector.pauses.append
    connector.waits = record_waits(connector.gateway.http)
    return connector, config


def uri(site, path):
    return f"web:docs/{site.url}{path}"


def test_a_first_sync_stores_the_site_under_its_base_path_as_robots_allows(ckb, any_site):
    site = any_site
    connector, config = connect(site)
    result = sync(ckb, connector, config)
    assert result.error == "" and result.complete and result.report.added == len(PAGES)
    assert uris(ckb) == {uri(site, p) for p in PAGES}
    # robots.txt's Disallow and the base path: never requested, never stored
    assert site.paths("/docs/private") == [] and site.paths("/blog") == []
    # Crawl-delay: 1 between page requests (not before the first)
    assert connector.pauses == [1.0] * (len(PAGES) - 1)
    docs = documents(ckb)
    install = docs[uri(site, "/docs/install")]
    assert install["title"] == "Installing larkctl"
    assert (
        "pipx install larkctl" in install["text"] and "all rights reserved" not in install["text"]
    )
    meta = install["metadata"]
    assert meta["url"] == site.url + "/docs/install"
    assert meta["updated_at"] == "2026-11-02T09:30:00Z"
    assert meta["access"] == {"public": False, "groups": ["web:docs"], "users": []}
    assert "$750" in docs[uri(site, "/docs/guide.pdf")]["text"]  # the PDF, through the file parser


def test_the_sitemap_index_is_read_gzipped_and_the_blog_sitemap_adds_nothing(ckb):
    with MockSite(sitemap=True) as site:
        connector, config = connect(site)
        sync(ckb, connector, config)
        assert site.paths("/sitemap") == [
            "/sitemap_index.xml.gz",
            "/sitemap-docs.xml.gz",
            "/sitemap-blog.xml",
        ]


def test_an_edit_refetches_only_that_page_and_the_rest_cost_a_304_or_nothing(ckb, any_site):
    site = any_site
    connector, config = connect(site)
    sync(ckb, connector, config)
    parsed, embedded = ckb.parser.calls, ckb.embedder.texts
    site.clear_calls()
    site.edit("/docs/deploy.html", NEW_DEPLOY)
    result = sync(ckb, connector, config)
    assert (result.report.updated, result.report.unchanged) == (1, len(PAGES) - 1)
    assert ckb.parser.calls == parsed + 1 and 0 < ckb.embedder.texts - embedded <= 2
    if site.sitemap:  # the sitemap's lastmod moved for that page alone
        assert site.paths("/docs") == ["/docs/deploy.html"]
    else:  # each page one conditional GET
        assert all(site.fetched(p) == [1] for p in PAGES)
    assert "red-black pipeline" in documents(ckb)[uri(site, "/docs/deploy.html")]["text"]


def test_last_modified_alone_serves_as_the_version(ckb):
    with MockSite(sitemap=False, etags=False) as site:
        connector, config = connect(site)
        sync(ckb, connector, config)
        parsed = ckb.parser.calls
        site.edit("/docs/install/advanced", NEW_DEPLOY)
        result = sync(ckb, connector, config)
        assert result.report.updated == 1 and ckb.parser.calls == parsed + 1


def test_a_deleted_page_and_a_newly_disallowed_one_leave_the_answers(ckb, any_site):
    site = any_site
    connector, config = connect(site)
    everyone = token_audience("web:docs")
    sync(ckb, connector, config)
    assert uri(site, "/docs/old") in seen_uris(ask(ckb, "legacy sqlite backend quokka", everyone))
    site.delete("/docs/old")
    site.robots_extra = "Disallow: /docs/install/advanced\n"
    result = sync(ckb, connector, config)
    assert result.report.removed == 2 and uri(site, "/docs/old") not in uris(ckb)
    assert uri(site, "/docs/install/advanced") not in uris(ckb)
    assert uri(site, "/docs/old") not in seen_uris(
        ask(ckb, "legacy sqlite backend quokka", everyone)
    )


@pytest.mark.parametrize("at", [1, 4])
def test_a_kill_mid_sync_and_a_rerun_lose_and_duplicate_nothing(ckb, site, at, tmp_path):
    connector, config = connect(site)
    kill_at(connector, at)
    with pytest.raises(Killed):
        sync(ckb, connector, config)
    again = restarted(ckb)
    connector, config = connect(site)
    result = sync(again, connector, config)
    assert result.error == "" and uris(again) == {uri(site, p) for p in PAGES}
    assert result.report.added + result.report.unchanged == len(PAGES)
    assert stored(again) == reference(ckb, tmp_path / "clean", *connect(site))


def test_a_rate_limited_site_is_read_late_but_whole(ckb, site):
    connector, config = connect(site)
    site.fail("/docs/install", 429, {"Retry-After": "7"}, times=2)
    site.fail("/docs/deploy.html", 503, times=1)
    result = sync(ckb, connector, config)
    assert result.error == "" and result.complete
    assert uris(ckb) == {uri(site, p) for p in PAGES}
    assert connector.waits.count(7.0) == 2 and len(connector.waits) == 3


def test_caps_make_the_listing_incomplete_and_say_so():
    with MockSite(sitemap=False) as site:
        connector, _ = connect(site, max_depth=1, max_pages=3)
        listing = connector.list(None)
        assert not listing.complete and len(listing.items) == 3
        assert any("max_pages=3" in why for _, why in listing.problems)
        connector, _ = connect(site, max_depth=1)
        listing = connector.list(None)
        assert not listing.complete
        assert "/docs/install/advanced" not in {i.id.removeprefix(site.url) for i in listing.items}
        assert any("max_depth=1" in why for _, why in listing.problems)


def test_a_restricted_site_reaches_only_audiences_that_hold_it(ckb, site):
    connector, config = connect(site)
    sync(ckb, connector, config)
    question = "how do deploys go out through the blue-green pipeline?"
    for stranger in (token_audience("web:other"), channel_audience()):
        assert seen_uris(ask(ckb, question, stranger)) == set()
        assert visible(ckb, stranger) == set()
    assert uri(site, "/docs/deploy.html") in seen_uris(
        ask(ckb, question, token_audience("web:docs"))
    )


def test_a_public_site_is_seen_by_everyone(ckb, site):
    connector, config = connect(site, access="public")
    sync(ckb, connector, config)
    assert len(visible(ckb, channel_audience())) == len(PAGES)


@pytest.mark.parametrize(
    "options, message",
    [({"access": "everyone"}, "access must be"), ({"max_pages": 0}, "max_pages must be")],
)
def test_bad_options_are_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        build(SourceConfig(name="docs", kind="web", url="https://docs.example/", options=options))


def test_an_unreachable_robots_txt_crawls_nothing_and_prunes_nothing(ckb, site):
    connector, config = connect(site)
    sync(ckb, connector, config)
    site.clear_calls()
    site.fail("/robots.txt", 503, times=6)
    result = sync(ckb, connector, config)
    assert result.error == "" and not result.complete
    assert len(uris(ckb)) == len(PAGES) and site.paths() == ["/robots.txt"] * 6


def test_a_sitemap_that_misses_the_base_path_falls_back_to_the_links(site):
    site.pages["/kb/"] = ("text/html", page("KB", "<p>The knowledge base index.</p>", ("a",)))
    site.pages["/kb/a"] = ("text/html", page("KB A", "<p>Article A of the knowledge base.</p>"))
    site.modified.update(dict.fromkeys(["/kb/", "/kb/a"], EPOCH))
    connector = build(SourceConfig(name="kb", kind="web", url=site.url + "/kb/"))
    connector.pause = lambda seconds: None
    listing = connector.list(None)
    assert listing.complete and {i.title for i in listing.items} == {"KB", "KB A"}


def test_an_unchanged_sitemap_costs_no_page_request_until_a_recheck_is_due(ckb, site):
    connector, config = connect(site)
    sync(ckb, connector, config)
    site.clear_calls()
    assert sync(ckb, connector, config).report.unchanged == len(PAGES)
    assert site.paths("/docs") == [] and connector.pauses.count(1.0) == len(PAGES) - 1
    site.stale.add("/docs/old")  # deleted, still listed by a stale sitemap
    site.delete("/docs/old")
    sync(ckb, connector, config)
    assert uri(site, "/docs/old") in uris(ckb)
    later = time.time() + 8 * 86400
    connector.now = lambda: later
    site.clear_calls()
    result = sync(ckb, connector, config)
    assert result.report.removed == 1 and uri(site, "/docs/old") not in uris(ckb)
    assert all(site.fetched(p) == [1] for p in PAGES if p != "/docs/old")


@pytest.mark.slow  # two CLI starts: ~30 s on a busy machine
def test_a_sigkilled_kbqa_sync_of_the_site_then_a_re_run_loses_nothing(tmp_path):
    import os
    import subprocess
    import sys

    from kbqa.app import KnowledgeBase

    from .helpers_web import faults_bench

    bench = faults_bench()
    with MockSite(crawl_delay=0) as site:
        (tmp_path / "kbqa.toml").write_text(
            f'[[sources]]\nname = "docs"\nkind = "web"\nurl = "{site.url}/docs/"\n'
        )
        env = {
            **os.environ,
            "KBQA_HOME": str(tmp_path / "home"),
            "KBQA_EMBEDDING_MODEL": "hash",
            "KBQA_EMBED_BATCH_SIZE": "2",
            "KBQA_DEVICE": "cpu",
            "PYTHONPATH": os.pathsep.join(
                [str(bench.ROOT / "src"), os.environ.get("PYTHONPATH", "")]
            ),
        }

        def run(fault: str = "") -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "kbqa", "sync", "docs"],
                env={**env, "KBQA_FAULT_AT": fault} if fault else env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )

        killed = run("commit:2")
        assert killed.returncode == -9, killed.stderr
        done = run()
        assert done.returncode == 0, done.stderr
        kb = KnowledgeBase(bench.settings_for(tmp_path / "home"))
        assert bench.check(kb) == []
        assert uris(kb) == {uri(site, p) for p in PAGES}
