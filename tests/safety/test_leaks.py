"""The leak benchmark's short version: secrets in private channels and restricted files never
surface for other channels, DMs, an unknown channel or restricted tokens, anywhere."""

import json

from conftest import HANDBOOK
from kbqa import logs
from kbqa.app import KnowledgeBase
from kbqa.evals import leaks
from kbqa.retrieval.embedder import HashEmbedder


def test_no_secret_reaches_an_audience_that_may_not_see_it(settings, tmp_path):
    items = leaks.secrets(8)
    restricted = leaks.write_files(tmp_path / "corpus", items)
    settings = settings.replace(slack_workspace="larkspur", allow_loopback_without_token=False)
    log_path = logs.configure(settings.home, "CRITICAL", "DEBUG")
    try:
        kb = KnowledgeBase(settings, embedder=HashEmbedder())
        handbook = [HANDBOOK / "runbooks" / "databases.md", HANDBOOK / "faq" / "vpn.txt"]
        kb.ingest([*handbook, HANDBOOK / "policies" / "security-access.md", restricted])
        kb.index_sources([leaks.slack_source(items)])
        counts = leaks.run(kb, items, 24, 8, log_path)
    finally:
        logs.unconfigure()
    assert counts["leaks"] == 0, json.dumps(counts["leaks_where"])
    # The questions do reach the secrets from where they may be seen.
    assert counts["reachable_by_owner"] >= counts["questions"] // 2, counts
