"""Follow-ups on the bundled handbook: today's behaviour (the follow-up searched as asked) against
the follow-up searched with its conversation (assistant/followup.py), in one run.

    python benchmarks/followups.py [--pairs FILE ...] [--home DIR] [--generator N] [--verbose]
        [--no-nearness] [--ceiling REWRITES]

Ingests examples/handbook with the packaged embedder (once; later runs reuse it), then for each
pair of each set (`--pairs`; by default every tests/data/followups*.json: the studied set and the
held out; docs/first-hour.md says when each was blind) asks the first
question, then the follow-up with the first turn as history. Quoted (extractive) answers by
default, so no generator runs and the figure is retrieval's: the right document first, and an
answer citing it with the expected words (in the answer or its cited passage; "in its words":
in the answer's own text, what the asker reads first). With `--generator N`, the first N
pairs again with the configured generator (it writes the answer, and the rewrite too with
`KBQA_FOLLOWUP_REWRITE=generator`). Also counts how often a standalone question asked after
an unrelated turn is rewritten (target 0), with the generator too when it
runs: a set's first questions and its own `standalone` list. `--no-nearness` measures the code
before the passages' nearness was a witness (the word rules alone). `--ceiling FILE` (a JSON
list of {"set", "i", "standalone"}: each follow-up as a person rewrote it, e.g.
tests/data/rewritten_followups.json) adds two arms that say how far a perfect rewrite could take
the answer path: each follow-up's rewrite asked alone ("person", in place of "today"), and the
set's `standalone` questions asked alone, judged the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from kbqa.app import KnowledgeBase
from kbqa.assistant import followup
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETS = sorted((ROOT / "tests/data").glob("followups*.json"))


def judged(answer, pair) -> tuple[bool, bool, bool]:
    """(the right document ranks first, answered citing it with the expected words in the
    answer or its cited passage, ... in the answer's own words: what the asker reads first)."""
    first = bool(answer.hits) and answer.hits[0].uri.endswith(pair["source"])
    cited = [c.hit for c in answer.citations if c.hit.uri.endswith(pair["source"])]
    shown = " ".join([answer.text, *(h.text for h in cited)]).lower()
    right = not answer.abstained and bool(cited)
    expected = [w.lower() for w in pair["answer_contains"]]
    said = right and all(w in answer.text.lower() for w in expected)
    return first, right and all(w in shown for w in expected), said


ARMS = ("today", "rewrite", "person")


def run(kb: KnowledgeBase, pairs: list[dict], extractive: bool, verbose: bool) -> dict:
    counts = {f"{n}_{c}": 0 for n in ARMS for c in ("first", "right", "said")}
    started = time.perf_counter()
    for pair in pairs:
        first = kb.ask(pair["first"], extractive=extractive)
        history = [(pair["first"], first.text)]
        rewrite = kb.ask(pair["followup"], extractive=extractive, history=history)
        arms = [("rewrite", rewrite)]
        if "person" in pair:  # the follow-up as a person rewrote it, asked alone
            arms.append(("person", kb.ask(pair["person"], extractive=extractive)))
        else:  # today's behaviour: the history never reached the search
            arms.append(("today", kb.ask(pair["followup"], extractive=extractive)))
        for name, answer in arms:
            top, right, said = judged(answer, pair)
            counts[f"{name}_first"] += top
            counts[f"{name}_right"] += right
            counts[f"{name}_said"] += said
        if verbose:
            mark = "+" if judged(rewrite, pair)[1] else "-"
            mark += "+" if judged(rewrite, pair)[2] else "-"
            line = f"  {mark} {pair['followup']!r} -> {rewrite.searched or '(as asked)'!r}"
            if "person" in pair:
                person = judged(arms[1][1], pair)
                line += f"; person {'+' if person[1] else '-'}{'+' if person[2] else '-'}"
            print(line)
    counts["seconds"] = time.perf_counter() - started
    return counts


def unchanged(kb: KnowledgeBase, questions: list[str], extractive: bool = True) -> int:
    """Standalone questions searched as asked after an unrelated turn (another one of them)."""
    same = 0
    for i, question in enumerate(questions):
        other = questions[(i + len(questions) // 2) % len(questions)]
        searched = kb.searched_for(question, [(other, "…")], extractive=extractive)
        same += searched == question
    return same


def answered_alone(kb: KnowledgeBase, questions: list[dict], extractive: bool) -> int:
    """Standalone questions asked with no conversation, answered and right as `judged` says."""
    return sum(judged(kb.ask(q["question"], extractive=extractive), q)[1] for q in questions)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-bench")
    parser.add_argument("--generator", type=int, default=0, metavar="N")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--generator-only", action="store_true", help="skip the quoted run")
    parser.add_argument("--pairs", type=Path, nargs="+", default=SETS, metavar="FILE")
    parser.add_argument(
        "--no-nearness", action="store_true", help="the word rules alone (the code before)"
    )
    parser.add_argument(
        "--ceiling", type=Path, metavar="REWRITES", help="add the arms a perfect rewrite gives"
    )
    args = parser.parse_args()
    if args.no_nearness:
        followup.NO_NEARER, followup.CLOSER = -math.inf, math.inf
    kb = KnowledgeBase(Settings.load(home=args.home, slack_workspace="larkspur"))
    kb.ingest([ROOT / "examples/handbook"])
    for path in args.pairs:
        measure(kb, path, args)


def measure(kb: KnowledgeBase, path: Path, args: argparse.Namespace) -> None:
    data = json.loads(path.read_text())
    pairs = data["pairs"]
    if args.ceiling:
        rewrites = json.loads(args.ceiling.read_text())
        people = {r["i"]: r["standalone"] for r in rewrites if r["set"] == path.name}
        pairs = [dict(p, person=people[i]) for i, p in enumerate(pairs) if i in people]
    n = len(pairs)
    alone = [p["first"] for p in pairs] + [q["question"] for q in data.get("standalone", [])]
    print(f"\n{n} follow-up pairs ({path.name}), embedder {kb.embedder.name}")
    head = f"{'right doc first':>16} {'answered+right':>15} {'in its words':>13} {'s/pair':>7}"
    print(f"{'run':34} {head}")

    def show(label: str, counts: dict, total: int) -> None:
        for name in ARMS[1:] if args.ceiling else ARMS[:2]:
            first, right = counts[f"{name}_first"], counts[f"{name}_right"]
            said = counts[f"{name}_said"]
            print(
                f"{label + ' ' + name:34} {first:>5}/{total} {first / total:>5.0%} "
                f"{right:>5}/{total} {right / total:>4.0%} {said:>5}/{total} {said / total:>4.0%}"
                f" {counts['seconds'] / total:>7.2f}"
            )

    if not args.generator_only:
        show("quoted (no generator):", run(kb, pairs, True, args.verbose), n)
        same = unchanged(kb, alone)
        print(f"standalone after an unrelated turn, searched as asked: {same}/{len(alone)}")
    if args.generator:
        sample = pairs[: args.generator]
        show(f"{kb.settings.generator_model}:", run(kb, sample, False, args.verbose), len(sample))
        same = unchanged(kb, alone, extractive=False)
        print(f"with the generator, standalone questions searched as asked: {same}/{len(alone)}")
    if args.ceiling:
        for extractive in [True] * (not args.generator_only) + [False] * bool(args.generator):
            alone_right = answered_alone(kb, data.get("standalone", []), extractive)
            name = "quoted" if extractive else kb.settings.generator_model
            total = len(data.get("standalone", []))
            print(f"{name}: the standalone questions answered and right: {alone_right}/{total}")


if __name__ == "__main__":
    main()
