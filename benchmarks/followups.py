"""Follow-ups on the bundled handbook: today's behaviour (the follow-up searched as asked) against
the follow-up searched with its conversation (assistant/followup.py), in one run.

    python benchmarks/followups.py [--pairs FILE ...] [--home DIR] [--generator N] [--verbose]

Ingests examples/handbook with the packaged embedder (once; later runs reuse it), then for each
pair of each set (`--pairs`; by default tests/data/followups.json, the set studied, and
followups_heldout.json and followups_heldout2.json, the blind ones) asks the first question,
then the follow-up with the first turn as history. Quoted (extractive) answers by default, so no
generator runs and the figure is retrieval's: the right document first, and an answer citing it
with the expected words. With `--generator N`, the first N pairs again with the configured
generator (it writes the rewrite and the answer). Also counts how often a standalone question
asked after an unrelated turn is rewritten (target 0).
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
SETS = [
    ROOT / "tests/data" / name
    for name in ("followups.json", "followups_heldout.json", "followups_heldout2.json")
]


def judged(answer, pair) -> tuple[bool, bool]:
    """(the right document ranks first, answered citing it with the expected words)."""
    first = bool(answer.hits) and answer.hits[0].uri.endswith(pair["source"])
    cited = [c.hit for c in answer.citations if c.hit.uri.endswith(pair["source"])]
    shown = " ".join([answer.text, *(h.text for h in cited)]).lower()
    right = not answer.abstained and bool(cited)
    return first, right and all(w.lower() in shown for w in pair["answer_contains"])


def run(kb: KnowledgeBase, pairs: list[dict], extractive: bool, verbose: bool) -> dict:
    counts = {"today_first": 0, "today_right": 0, "rewrite_first": 0, "rewrite_right": 0}
    started = time.perf_counter()
    for pair in pairs:
        first = kb.ask(pair["first"], extractive=extractive)
        history = [(pair["first"], first.text)]
        today = kb.ask(pair["followup"], extractive=extractive)  # history never reached search
        rewrite = kb.ask(pair["followup"], extractive=extractive, history=history)
        for name, answer in (("today", today), ("rewrite", rewrite)):
            top, right = judged(answer, pair)
            counts[f"{name}_first"] += top
            counts[f"{name}_right"] += right
        if verbose:
            mark = "+" if judged(rewrite, pair)[1] else "-"
            print(f"  {mark} {pair['followup']!r} -> {rewrite.searched or '(as asked)'!r}")
    counts["seconds"] = time.perf_counter() - started
    return counts


def unchanged(kb: KnowledgeBase, pairs: list[dict]) -> int:
    """Standalone questions searched as asked after an unrelated turn."""
    same = 0
    for i, pair in enumerate(pairs):
        other = pairs[(i + len(pairs) // 2) % len(pairs)]
        answer = kb.ask(pair["first"], extractive=True, history=[(other["first"], "…")])
        same += not answer.searched
    return same


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-bench")
    parser.add_argument("--generator", type=int, default=0, metavar="N")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--generator-only", action="store_true", help="skip the quoted run")
    parser.add_argument("--pairs", type=Path, nargs="+", default=SETS, metavar="FILE")
    args = parser.parse_args()
    kb = KnowledgeBase(Settings.load(home=args.home, slack_workspace="larkspur"))
    kb.ingest([ROOT / "examples/handbook"])
    for path in args.pairs:
        measure(kb, path, args)


def measure(kb: KnowledgeBase, path: Path, args: argparse.Namespace) -> None:
    pairs = json.loads(path.read_text())["pairs"]
    n = len(pairs)
    print(f"\n{n} follow-up pairs ({path.name}), embedder {kb.embedder.name}")
    print(f"{'run':34} {'right doc first':>16} {'answered+right':>15} {'s/pair':>7}")

    def show(label: str, counts: dict, total: int) -> None:
        for name in ("today", "rewrite"):
            first, right = counts[f"{name}_first"], counts[f"{name}_right"]
            print(
                f"{label + ' ' + name:34} {first:>5}/{total} {first / total:>5.0%} "
                f"{right:>5}/{total} {right / total:>4.0%} {counts['seconds'] / total:>7.2f}"
            )

    if not args.generator_only:
        show("quoted (no generator):", run(kb, pairs, True, args.verbose), n)
        same = unchanged(kb, pairs)
        print(f"standalone questions after an unrelated turn searched as asked: {same}/{n}")
    if args.generator:
        sample = pairs[: args.generator]
        show(f"{kb.settings.generator_model}:", run(kb, sample, False, args.verbose), len(sample))


if __name__ == "__main__":
    main()
