"""A sample of a `kbqa eval qa` run's delivered answers, each beside the passages it cites, for
a person to read ("does the cited passage say this?").

    python tools/read_answers.py REPORT_FOLDER [--config LABEL] [-n 50] [--seed 1]
        [--mode generated] [--unread] > read.md

Only answers delivered at the report's own gate (min_confidence, min_hit_score,
min_quote_confidence) are sampled,
in the mode asked for. Each item ends with a "verdict:" line to fill in. With --unread, answers
that an earlier read (tests/data/manual_read*.json) holds are left out: a rule written after
reading those answers is then measured on answers it was not written from.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from kbqa.evals.beir import load_beir
from kbqa.evals.qa import Gate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--config", help="answers-CONFIG.jsonl (default: the first generator's)")
    parser.add_argument("--dataset", type=Path, help="the BEIR folder (default: from KBQA_HOME)")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", default="generated", help="generated, extracted or any")
    parser.add_argument(
        "--unread", action="store_true", help="leave out answers an earlier read holds"
    )
    args = parser.parse_args()
    gate = json.loads((args.folder / "metrics.json").read_text())
    if args.dataset is None:
        from kbqa.settings import Settings

        args.dataset = Settings.load().home / "datasets" / gate["dataset"]
    corpus = load_beir(args.dataset).corpus
    files = sorted(args.folder.glob("answers-*.jsonl"))
    path = next(
        (f for f in files if args.config and f.stem == f"answers-{args.config}"),
        next(f for f in files if "extractive" not in f.stem),
    )
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    delivers = Gate.from_metrics(gate).delivers
    delivered = [
        r for r in records if delivers(r) and (args.mode == "any" or r["mode"] == args.mode)
    ]
    if args.unread:
        read = earlier_reads()
        delivered = [r for r in delivered if (r["id"], r["answer"].strip()) not in read]
    sample = random.Random(args.seed).sample(delivered, min(args.n, len(delivered)))
    print(f"# {len(sample)} of {len(delivered)} delivered answers ({args.mode}), {path.name}\n")
    for n, r in enumerate(sorted(sample, key=lambda r: r["id"]), 1):
        print(f"## {n}. {r['id']} — {r['question'].strip()}")
        print(f"reference: {r['reference']!r} (answerable: {r['answerable']}, gold {r['gold']})")
        print(f"answer: {r['answer']}")
        for doc in r["cited"]:
            text = corpus[doc][1] if doc in corpus else "(not in the corpus)"
            print(f"- cited {doc}: {text}")
        print("verdict: \n")


def earlier_reads() -> set[tuple[str, str]]:
    """(question id, answer) of every answer in the committed manual reads."""
    folder = Path(__file__).resolve().parents[1] / "tests" / "data"
    return {
        (r["id"], r["answer"].strip())
        for path in folder.glob("manual_read*.json")
        for r in json.loads(path.read_text())
    }


if __name__ == "__main__":
    main()
