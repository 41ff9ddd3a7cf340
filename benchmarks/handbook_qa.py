"""Answer quality on the bundled handbook: right source cited, abstentions, per answer mode.

    python benchmarks/handbook_qa.py [--home DIR]

Ingests examples/handbook (once; later runs reuse it) and asks every question in
tests/data/handbook_qa.json in three modes: extractive, generate (abstain when nothing the
generator wrote survives the support check), generate with on_unsupported=extract.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from kbqa.app import KnowledgeBase
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-bench")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--with-slack", action="store_true", help="also ingest examples/slack-export"
    )
    args = parser.parse_args()
    qa = json.loads((ROOT / "tests/data/handbook_qa.json").read_text())
    home = args.home.with_name(args.home.name + "-slack") if args.with_slack else args.home
    kb = KnowledgeBase(Settings.load(home=home, slack_workspace="larkspur"))
    paths = [ROOT / "examples/handbook"]
    kb.ingest([*paths, ROOT / "examples/slack-export"] if args.with_slack else paths)
    modes = {
        "extractive": dict(extractive=True, on_unsupported="abstain"),
        "generate": dict(extractive=False, on_unsupported="abstain"),
        "generate+extract": dict(extractive=False, on_unsupported="extract"),
    }
    print(
        f"{'mode':18} {'right source':>13} {'has facts':>10} {'abstained':>10} {'s/question':>11}"
    )
    for mode, opts in modes.items():
        kb.settings = kb.settings.replace(on_unsupported=opts["on_unsupported"])
        cited = facts = abstained = 0
        started = time.perf_counter()
        for item in qa["answerable"]:
            answer = kb.ask(item["question"], extractive=opts["extractive"])
            right = any(c.hit.uri.endswith(item["source"]) for c in answer.citations)
            cited += right
            facts += all(f.lower() in answer.text.lower() for f in item["answer_contains"])
            if args.verbose:
                print(f"  {'+' if right else '-'} {item['question'][:50]!r}: {answer.text[:90]!r}")
        for item in qa["unanswerable"]:
            answer = kb.ask(item["question"], extractive=opts["extractive"])
            abstained += answer.abstained
            if args.verbose:
                print(
                    f"  {'+' if answer.abstained else '-'} {item['question'][:50]!r}: "
                    f"{answer.text[:90]!r}"
                )
        per = (time.perf_counter() - started) / (len(qa["answerable"]) + len(qa["unanswerable"]))
        print(
            f"{mode:18} {cited:>6}/{len(qa['answerable']):<6} {facts:>4}/{len(qa['answerable']):<5}"
            f" {abstained:>4}/{len(qa['unanswerable']):<5} {per:>10.2f}"
        )


if __name__ == "__main__":
    main()
