"""An unchanged re-sync's cost against the first sync, per connector, over local mocks.

Each connector's mock (tests/connectors/mock_*.py: the services' documented APIs on 127.0.0.1;
for git, a fixture repository read as a local path) holds --pages items: Confluence pages over
four spaces (some restricted), git Markdown files, web pages under a sitemap, Drive Google Docs
in a folder, Notion pages. Each is synced once into an empty knowledge base of its own, then
again with nothing changed. Prints, per connector, both times, their ratio (target: the re-sync
costs <= 2 % of the first), the HTTP calls of each, and the parse and embed calls of the re-sync
(target: none); then one line of the ratios.

    python benchmarks/connector_sync.py [--connector all|confluence|git|gdrive|notion|web]
        [--pages 1000] [--embedder hash] [--home DIR]

The hash embedder is the default: a real model makes the first sync slower and the ratio
smaller, so the default is the harder case for the target. The web connector's Crawl-delay
waits are skipped (they are politeness, not cost).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# The mocks are support modules of the tests (no test module is imported here).
from connectors.mock_confluence import MockConfluence, MockPage  # noqa: E402
from connectors.mock_gdrive import DOC, MockDrive, perm  # noqa: E402
from connectors.mock_gdrive import TOKEN as DRIVE_TOKEN  # noqa: E402
from connectors.mock_git import FixtureRepo  # noqa: E402
from connectors.mock_notion import TOKEN as NOTION_TOKEN  # noqa: E402
from connectors.mock_notion import MockNotion, block, nid, rt  # noqa: E402
from connectors.mock_web import EPOCH, MockSite  # noqa: E402
from connectors.mock_web import page as web_page  # noqa: E402

from kbqa.app import KnowledgeBase  # noqa: E402
from kbqa.ingest.connect import sync_one  # noqa: E402
from kbqa.ingest.connectors import build_connector  # noqa: E402
from kbqa.ingest.connectors.config import SourceConfig  # noqa: E402
from kbqa.ingest.files import parse_file  # noqa: E402
from kbqa.retrieval.embedder import make_embedder  # noqa: E402
from kbqa.settings import Settings  # noqa: E402

KINDS = ("confluence", "git", "gdrive", "notion", "web")

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


def words(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 120)))


def markdown(rng: random.Random, n: int) -> str:
    sections = "".join(f"## Section {s}\n\n{words(rng)}.\n\n" for s in range(rng.randint(1, 3)))
    return f"# Page {n}\n\n{sections}"


@dataclass
class Setup:
    config: SourceConfig
    calls: Any  # () -> the number of HTTP calls served so far
    clear: Any  # () -> None


@contextlib.contextmanager
def confluence(rng: random.Random, pages: int, tmp: Path) -> Iterator[Setup]:
    with MockConfluence(max_page=250) as wiki:
        for key in ("ENG", "OPS", "SEC", "PUB"):
            wiki.add_space(key, anonymous=key == "PUB", groups=(key.lower(),))
        for n in range(pages):
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
        yield Setup(config, lambda: len(wiki.calls), wiki.clear_calls)


@contextlib.contextmanager
def git(rng: random.Random, pages: int, tmp: Path) -> Iterator[Setup]:
    repo = FixtureRepo(tmp / "repo")
    repo.commit({f"docs/page{n}.md": markdown(rng, n) for n in range(pages)}, "the docs")
    try:
        yield Setup(
            SourceConfig(name="repo", kind="git", url=str(repo.path)), lambda: 0, lambda: None
        )
    finally:
        repo.repo.close()


@contextlib.contextmanager
def gdrive(rng: random.Random, pages: int, tmp: Path) -> Iterator[Setup]:
    with MockDrive(page_size=100) as drive:
        for n in range(pages):
            perms = [perm("domain", "acme.com")] if n % 10 else [perm("group", "sre@acme.com")]
            drive.add(f"doc-{n}", f"Page {n}", DOC, "fld-eng", markdown(rng, n), perms)
        config = SourceConfig(
            name="drive", kind="gdrive", url=drive.url, scope=("fld-eng",), token=DRIVE_TOKEN
        )
        yield Setup(config, lambda: len(drive.calls), drive.clear_calls)


@contextlib.contextmanager
def notion(rng: random.Random, pages: int, tmp: Path) -> Iterator[Setup]:
    with MockNotion(page_size=100) as server:
        template = next(o for o in server.objects.values() if o["object"] == "page")
        for n in range(pages):
            pid = nid(f"bench-{n}")
            obj = copy.deepcopy(template)
            obj.update(id=pid, url=f"https://www.notion.so/Page-{n}-{pid.replace('-', '')}")
            obj["properties"] = {
                "title": {"id": "title", "type": "title", "title": rt(f"Page {n}")}
            }
            obj["parent"] = {"type": "workspace", "workspace": True}
            server.objects[pid] = obj
            server.blocks[pid] = [
                block("heading_2" if i % 2 == 0 else "paragraph", words(rng)) for i in range(4)
            ]
            server.shared.add(pid)
        config = SourceConfig(name="acme", kind="notion", url=server.url, token=NOTION_TOKEN)
        yield Setup(config, lambda: len(server.calls), server.clear_calls)


@contextlib.contextmanager
def web(rng: random.Random, pages: int, tmp: Path) -> Iterator[Setup]:
    with MockSite(crawl_delay=0) as site:
        for n in range(pages):
            path = f"/docs/bench/page{n}"
            body = "".join(f"<h2>Section {s}</h2><p>{words(rng)}.</p>" for s in range(2))
            site.pages[path] = ("text/html; charset=utf-8", web_page(f"Page {n}", body))
            site.modified[path] = EPOCH
        options = {"max_pages": pages + 100}  # the fixture's own pages besides
        config = SourceConfig(name="docs", kind="web", url=site.url + "/docs/", options=options)
        yield Setup(config, lambda: len(site.calls), site.clear_calls)


SETUPS = {"confluence": confluence, "git": git, "gdrive": gdrive, "notion": notion, "web": web}


class Counting:
    def __init__(self, inner) -> None:
        self.inner, self.calls, self.texts = inner, 0, 0
        self.name, self.dim = inner.name, inner.dim

    def embed(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts)


def measure(kind: str, pages: int, embedder_name: str, home: Path) -> dict[str, Any]:
    """One connector's first sync and unchanged re-sync into a knowledge base under `home`."""
    rng = random.Random(7)
    settings = Settings(home=home, embedding_model=embedder_name, device="cpu")
    embedder = Counting(make_embedder(embedder_name, "cpu", settings.embed_batch_size))
    kb = KnowledgeBase(settings, embedder=embedder)
    parses = {"n": 0}

    def parse(path, digest, timings):
        parses["n"] += 1
        return parse_file(
            path, settings.chunk_max_chars, settings.chunk_soft_max_chars, digest, timings
        )

    with SETUPS[kind](rng, pages, home) as setup:
        config = replace(setup.config, home=home)
        connector = build_connector(config, home)
        if hasattr(connector, "pause"):
            connector.pause = lambda seconds: None

        def timed() -> tuple[float, dict]:
            setup.clear()
            before = (parses["n"], embedder.calls, embedder.texts)
            started = time.perf_counter()
            result = sync_one(config, settings, kb.store, kb.index_sources, None, connector, parse)
            seconds = time.perf_counter() - started
            assert result.error == "" and not result.failed, (result.error, result.failed[:3])
            return seconds, {
                "http_calls": setup.calls(),
                "parse_calls": parses["n"] - before[0],
                "embed_calls": embedder.calls - before[1],
                "embedded_texts": embedder.texts - before[2],
                "added": result.report.added,
                "unchanged": result.report.unchanged,
            }

        first, first_counts = timed()
        again, again_counts = timed()
        close = getattr(connector, "close", None)
        if close:
            close()
    return {
        "connector": kind,
        "pages": pages,
        "embedder": embedder_name,
        "first_sync_s": round(first, 2),
        "unchanged_resync_s": round(again, 3),
        "ratio": round(again / first, 4),
        "first": first_counts,
        "resync": again_counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connector", choices=("all", *KINDS), default="all")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--embedder", default="hash", help="embedding_model (default: hash)")
    parser.add_argument("--home", type=Path, help="under it, a KBQA_HOME per connector")
    args = parser.parse_args()
    root = args.home or Path(tempfile.mkdtemp(prefix="kbqa-connector-sync-"))
    # The parsers' and the embedder's imports are paid here, not by the first connector.
    measure("git", 2, args.embedder, root / "warm-up")
    ratios = {}
    for kind in KINDS if args.connector == "all" else (args.connector,):
        result = measure(kind, args.pages, args.embedder, root / kind)
        print(json.dumps(result), flush=True)
        ratios[kind] = f"{result['ratio']:.2%}"
    print("unchanged re-sync / first sync: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
