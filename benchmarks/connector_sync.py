"""An unchanged re-sync's cost against the first sync of a 1,000-page local Confluence.

The Confluence of tests/connectors/mock_confluence.py, --pages pages over four spaces, some
restricted, is synced once into an empty knowledge base, then again with nothing changed. Prints
both times, their ratio (target: the re-sync costs <= 2 % of the first), the HTTP calls of each,
and the parse and embed calls of the re-sync (target: none).

    python benchmarks/connector_sync.py [--pages 1000] [--embedder hash] [--home DIR]

The hash embedder is the default: a real model makes the first sync slower and the ratio
smaller, so the default is the harder case for the target.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from connectors.mock_confluence import MockConfluence, MockPage  # noqa: E402

from kbqa.app import KnowledgeBase  # noqa: E402
from kbqa.ingest.connect import sync_one  # noqa: E402
from kbqa.ingest.connectors.config import SourceConfig  # noqa: E402
from kbqa.ingest.connectors.confluence import build  # noqa: E402
from kbqa.ingest.files import parse_file  # noqa: E402
from kbqa.retrieval.embedder import make_embedder  # noqa: E402
from kbqa.settings import Settings  # noqa: E402

WORDS = [
    "deploy",
    "rollback",
    "cluster",
    "staging",
    "vault",
    "rotate",
    "backup",
    "restore",
    "alert",
    "oncall",
    "runbook",
    "latency",
    "queue",
    "shard",
    "replica",
    "index",
    "cache",
    "token",
    "quota",
    "budget",
    "review",
    "release",
    "canary",
    "metric",
    "trace",
]


def page(rng: random.Random, n: int) -> str:
    parts = [f"<h1>Page {n}</h1>"]
    for s in range(rng.randint(1, 3)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 120)))
        parts.append(f"<h2>Section {s}</h2><p>{words}.</p>")
    if n % 7 == 0:
        parts.append(
            '<ac:structured-macro ac:name="code"><ac:plain-text-body><![CDATA[kubectl get pods '
            f"-n team{n}]]></ac:plain-text-body></ac:structured-macro>"
        )
    return "".join(parts)


class Counting:
    def __init__(self, inner) -> None:
        self.inner, self.calls, self.texts = inner, 0, 0
        self.name, self.dim = inner.name, inner.dim

    def embed(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--embedder", default="hash", help="embedding_model (default: hash)")
    parser.add_argument("--home", type=Path, help="KBQA_HOME (default: a temporary folder)")
    args = parser.parse_args()
    rng = random.Random(7)
    home = args.home or Path(tempfile.mkdtemp(prefix="kbqa-connector-sync-"))
    settings = Settings(home=home, embedding_model=args.embedder, device="cpu")
    embedder = Counting(make_embedder(args.embedder, "cpu", settings.embed_batch_size))
    kb = KnowledgeBase(settings, embedder=embedder)
    parses = {"n": 0}

    def parse(path, digest, timings):
        parses["n"] += 1
        return parse_file(
            path, settings.chunk_max_chars, settings.chunk_soft_max_chars, digest, timings
        )

    with MockConfluence(max_page=250) as wiki:
        for key in ("ENG", "OPS", "SEC", "PUB"):
            wiki.add_space(key, anonymous=key == "PUB", groups=(key.lower(),))
        for n in range(args.pages):
            space = ("ENG", "OPS", "SEC", "PUB")[n % 4]
            groups = ["sre"] if n % 10 == 0 else []
            wiki.pages[str(10_000 + n)] = MockPage(f"Page {n}", space, page(rng, n), groups=groups)
        config = SourceConfig(
            name="wiki",
            kind="confluence",
            url=wiki.url,
            token=wiki.token,
            user=wiki.user,
            scope=("ENG", "OPS", "SEC", "PUB"),
        )

        def timed() -> tuple[float, dict]:
            wiki.clear_calls()
            before = (parses["n"], embedder.calls, embedder.texts)
            started = time.perf_counter()
            result = sync_one(
                config, settings, kb.store, kb.index_sources, None, build(config), parse
            )
            seconds = time.perf_counter() - started
            assert result.error == "" and not result.failed, (result.error, result.failed[:3])
            return seconds, {
                "http_calls": len(wiki.calls),
                "parse_calls": parses["n"] - before[0],
                "embed_calls": embedder.calls - before[1],
                "embedded_texts": embedder.texts - before[2],
                "added": result.report.added,
                "unchanged": result.report.unchanged,
            }

        first, first_counts = timed()
        again, again_counts = timed()
    print(
        json.dumps(
            {
                "pages": args.pages,
                "embedder": args.embedder,
                "first_sync_s": round(first, 2),
                "unchanged_resync_s": round(again, 3),
                "ratio": round(again / first, 4),
                "first": first_counts,
                "resync": again_counts,
            }
        )
    )


if __name__ == "__main__":
    main()
