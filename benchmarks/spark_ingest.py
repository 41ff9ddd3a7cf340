"""Ingest throughput, local against `--spark local[N]`, on a generated corpus.

The corpus is a Slack export of generated threads (one ~900-character chunk each; a 100k-chunk
Slack history is what the issue wants embedded fast) plus, with --files, generated Markdown
files that the executors parse with unstructured. Each run ingests into a fresh KBQA_HOME.

    python benchmarks/spark_ingest.py --chunks 20000 --embedder hash
    python benchmarks/spark_ingest.py --chunks 2000 --files 20      # the packaged MiniLM
    scripts/with-postgres.sh sh -c 'python benchmarks/spark_ingest.py --chunks 20000 \
        --embedder hash --database-url "$KBQA_TEST_POSTGRES_URL"'

With --database-url (PostgreSQL) each run gets a fresh database of its own on that server, and
the Spark ingest runs twice: the driver writing (spark_writes = driver) and the executors
writing (the default there).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

from kbqa.app import KnowledgeBase
from kbqa.settings import PACKAGED_EMBEDDER, Settings

WORDS = re.findall(
    r"\w+",
    "service deploy database backup rotate password port cluster node replica index query "
    "latency budget policy holiday vacation office laptop expense travel invoice contract "
    "security token audit log metric alert incident runbook pager review release branch "
    "merge build test cache queue worker scheduler storage bucket network firewall staging "
    "prod rollback migration schema dashboard oncall escalation customer shipment route "
    "planner",
)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_corpus(root: Path, threads: int, files: int, seed: int = 0) -> Path:
    """A Slack export with `threads` threads (a parent and two replies, ~900 characters) in
    ten channels, and `files` Markdown files of twenty sections under root/docs."""
    rng = random.Random(seed)
    export = root / "slack"
    export.mkdir(parents=True)
    users = [{"id": f"U{n:04d}", "name": f"user{n}", "real_name": f"User {n}"} for n in range(20)]
    (export / "users.json").write_text(json.dumps(users))
    channels = [{"id": f"C{n:04d}", "name": f"team-{n}", "members": []} for n in range(10)]
    (export / "channels.json").write_text(json.dumps(channels))
    per_channel = -(-threads // len(channels))
    ts = 1_790_000_000
    for channel in channels:
        folder = export / channel["name"]
        folder.mkdir()
        messages = []
        for _ in range(per_channel):
            if threads <= 0:
                break
            threads -= 1
            ts += 600
            parent = f"{ts}.000100"
            messages.append(
                {
                    "type": "message",
                    "user": rng.choice(users)["id"],
                    "text": " ".join(_sentence(rng, 12) for _ in range(4)),
                    "ts": parent,
                    "thread_ts": parent,
                    "reply_count": 2,
                }
            )
            for r in range(2):
                messages.append(
                    {
                        "type": "message",
                        "user": rng.choice(users)["id"],
                        "text": " ".join(_sentence(rng, 12) for _ in range(3)),
                        "ts": f"{ts + 60 * (r + 1)}.000100",
                        "thread_ts": parent,
                    }
                )
        (folder / "2026-11-01.json").write_text(json.dumps(messages))
    docs = root / "docs"
    docs.mkdir()
    for n in range(files):
        sections = [f"# Generated document {n}\n"]
        for s in range(20):
            body = " ".join(_sentence(rng, 12) for _ in range(8))
            sections.append(f"## Section {s}\n\n{body}\n")
        (docs / f"doc{n:04d}.md").write_text("\n".join(sections))
    return root


def run(
    corpus: Path,
    home: Path,
    embedder: str,
    master: str,
    database_url: str = "",
    writes: str = "auto",
) -> dict:
    settings = Settings(
        home=home,
        embedding_model=embedder,
        slack_workspace="bench",
        device="cpu",
        database_url=database_url,
        spark_writes=writes,
    )
    kb = KnowledgeBase(settings)
    paths = [corpus / "slack"] + ([corpus / "docs"] if any((corpus / "docs").iterdir()) else [])
    kb.embedder.embed(["warm up"])  # model load is not ingest throughput
    started = time.perf_counter()
    report = kb.ingest(paths, spark=master)
    seconds = time.perf_counter() - started
    return {
        "mode": (master + (f", {writes} write" if database_url else "")) if master else "local",
        "chunks": report.chunks,
        "seconds": round(seconds, 1),
        "chunks_per_s": round(report.chunks / seconds, 1),
        "stages": {k: round(v, 1) for k, v in report.stages.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20000, help="Slack threads (one chunk each)")
    parser.add_argument("--files", type=int, default=0, help="Markdown files (20 chunks each)")
    parser.add_argument("--embedder", default=PACKAGED_EMBEDDER, help="e.g. hash for the fake")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server (else SQLite)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kbqa-spark-bench-"))
    created: list[str] = []

    def database(name: str) -> str:
        if not args.database_url:
            return ""
        created.append(name)
        return fresh_database(args.database_url, name)

    try:
        corpus = make_corpus(work / "corpus", args.chunks, args.files)
        results = [run(corpus, work / "local", args.embedder, "", database("kbqa_bench_local"))]
        if args.database_url:
            for writes in ("driver", "executors"):
                url = database(f"kbqa_bench_{writes}")
                results.append(run(corpus, work / writes, args.embedder, args.master, url, writes))
        else:
            results.append(run(corpus, work / "spark", args.embedder, args.master))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for name in created:
            drop_database(args.database_url, name)
    for r in results:
        print(json.dumps(r))
    local = results[0]
    for r in results[1:]:
        print(
            f"{args.embedder}: local {local['chunks_per_s']} chunks/s, {r['mode']} "
            f"{r['chunks_per_s']} chunks/s ({r['chunks_per_s'] / local['chunks_per_s']:.2f}x)"
            f" on {local['chunks']} chunks"
        )


def _server(url: str):
    from sqlalchemy import create_engine

    return create_engine(url, isolation_level="AUTOCOMMIT")


def fresh_database(url: str, name: str) -> str:
    """A new empty database `name` on the server of `url` (dropped first if it exists)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    drop_database(url, name)
    with _server(url).connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    from sqlalchemy import text

    engine = _server(url)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


if __name__ == "__main__":
    main()
