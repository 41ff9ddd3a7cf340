"""Leaks (OWASP LLM08): secrets planted in private Slack channels and in restricted files,
mixed into examples/handbook; questions phrased to reach them, asked from other channels, DMs,
a channel the bot cannot look up and restricted API tokens → count the secrets that surface
in answers, citations, closest-source lists, rendered Slack blocks, HTTP bodies, feedback
records and the log file (target 0). A control asks each question from an audience that may
see its secret, to show the questions do reach the secrets. The same over connector content
(evals/connector_leaks.py): secrets in restricted Confluence, Jira, GitHub, Drive and Notion
documents, probed by tokens and channels holding other principals ("connectors" in the output).

    python benchmarks/leaks.py [--questions 200] [--seed 8] [--home DIR]

Answers are extractive: what leaks is what retrieval lets through (the generator only ever
sees the passages retrieval returns), and quoting shows every passage's words.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from kbqa import logs
from kbqa.app import KnowledgeBase
from kbqa.evals import connector_leaks, leaks
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-leaks")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    items = leaks.secrets(args.seed)
    restricted = leaks.write_files(args.home / "corpus", items)
    settings = Settings.load(
        home=args.home,
        slack_workspace="larkspur",
        allow_loopback_without_token=False,
        slack_channel_principals=connector_leaks.CHANNEL_PRINCIPALS,
    )
    # Everything at DEBUG into the log file, which is scanned too.
    log_path = logs.configure(args.home, "ERROR", "DEBUG", settings.secrets())
    kb = KnowledgeBase(settings)
    kb.ingest([ROOT / "examples" / "handbook", restricted])
    kb.index_sources([leaks.slack_source(items)])
    planted = connector_leaks.planted(args.seed)
    kb.index_sources(connector_leaks.sources(planted))
    started = time.perf_counter()
    counts = leaks.run(kb, items, args.questions, args.seed, log_path)
    counts["connectors"] = connector_leaks.run(kb, planted, args.questions, args.seed, log_path)
    counts["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
