"""The leak probes over connector content (evals/connector_leaks.py): secrets in restricted
Confluence, Jira, GitHub, Drive and Notion documents never surface for tokens or channels that
hold other principals, in answers, citations, closest sources, listings or the log."""

import json

from conftest import HANDBOOK
from kbqa import logs
from kbqa.app import KnowledgeBase
from kbqa.evals import connector_leaks
from kbqa.retrieval.embedder import HashEmbedder


def test_no_connector_secret_reaches_an_audience_that_cannot_open_it(settings):
    items = connector_leaks.planted(8)
    settings = settings.replace(
        allow_loopback_without_token=False,
        slack_channel_principals=connector_leaks.CHANNEL_PRINCIPALS,
    )
    log_path = logs.configure(settings.home, "CRITICAL", "DEBUG")
    try:
        kb = KnowledgeBase(settings, embedder=HashEmbedder())
        kb.ingest([HANDBOOK / "runbooks" / "databases.md", HANDBOOK / "faq" / "vpn.txt"])
        kb.index_sources(connector_leaks.sources(items))
        counts = connector_leaks.run(kb, items, 60, 8, log_path)
    finally:
        logs.unconfigure()
    assert counts["leaks"] == 0, json.dumps(counts["leaks_where"])
    assert counts["reachable_by_owner"] >= counts["questions"] // 2, counts
