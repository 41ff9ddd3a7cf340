"""The pointer's other confidence signals against a blind read: the margin between the chosen
number and the next likeliest, and P([0]) (the model's probability of "not in the sources").

    python experiments/pointer_signals.py [--read tests/data/manual_read_pointer_6b0ebc8.json]

Issue 31 §3 asks for each signal's AUROC against the manual reads. The reads recorded only the
chosen number's probability; this asks every read question again at today's commit through the
same knowledge bases (`benchmarks/answer_styles.py`'s, under .kbqa-bench), with the packaged
generator wrapped so that its pointer reply's tokens are kept, and reads the distribution over
the first digit after the first "[" (renormalised over the digits the grammar allowed: numbers
of two digits share their first digit, so the margin is between first digits). An answer is
scored only where its evidence comes out as the read saw it (greedy, same retrieval).
Printed: how many reproduced, each signal's AUROC for supported and for responsive, and what a
gate on each keeps. Quiet machine for timings; the AUROCs do not depend on load.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import answer_styles  # noqa: E402  benchmarks/, for its knowledge bases

from kbqa.app import KnowledgeBase  # noqa: E402
from kbqa.evals.metrics import auroc  # noqa: E402
from kbqa.settings import Settings  # noqa: E402

SETS = {"halueval": "halueval-qa", "borg": "borg-docs"}


class Capture:
    """The packaged generator, keeping the tokens of its last pointer reply."""

    def __init__(self, inner):
        self.inner, self.name, self.tokens, self.units = inner, inner.name, [], 0

    def generate(self, messages, max_new_tokens=96):
        return self.inner.generate(messages, max_new_tokens)

    def stream(self, messages, max_new_tokens=96):
        yield from self.inner.stream(messages, max_new_tokens)

    def point(self, messages, grammar, max_new_tokens=64):
        self.tokens = []
        self.units = len(re.findall(r"^\[(\d+)\] ", messages[-1]["content"], re.M))
        for text, tokens in self.inner.point(messages, grammar, max_new_tokens):
            self.tokens += tokens
            yield text, tokens


def first_digits(tokens: list[dict], count: int) -> dict[str, float]:
    """P(first digit) after the reply's first "[", over the digits some number 0..count starts
    with; {} when the reply has no number."""
    allowed = {str(k)[0] for k in range(count + 1)}
    for i, token in enumerate(tokens[:-1]):
        if token["token"].endswith("["):
            nxt = tokens[i + 1]
            mass = {
                t["token"]: math.exp(t["logprob"])
                for t in nxt.get("top_logprobs", [])
                if t["token"] in allowed
            }
            mass.setdefault(nxt["token"], math.exp(nxt["logprob"]))
            total = sum(mass.values())
            return {k: v / total for k, v in mass.items()}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    read = ROOT / "tests/data/manual_read_pointer_6b0ebc8.json"
    parser.add_argument("--read", type=Path, default=read)
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-bench")
    parser.add_argument("--save", type=Path, help="write the per-answer signals (JSON lines)")
    args = parser.parse_args()
    read = json.loads(args.read.read_text())["answers"]
    generator = None
    rows = []
    for short, name in SETS.items():
        items = [a for a in read if a["dataset"] == short]
        if not items:
            continue
        folder = args.home / "datasets" / name
        from kbqa.evals.beir import load_beir
        from kbqa.evals.qa import corpus_source

        data = load_beir(folder)
        settings = Settings.load(home=args.home / "evals" / name).replace(answer_style="pointed")
        if generator is None:
            generator = Capture(KnowledgeBase(settings).generator)
        kb = KnowledgeBase(settings, generator=generator)
        kb.index_sources([corpus_source(data, name)])
        for i, item in enumerate(items, 1):
            answer, _first, _total = answer_styles.ask(kb, item["question"])
            seen = [e.text for e in answer.evidence]
            quoted = [line[2:] for line in item["answer"].splitlines() if line.startswith("> ")]
            same = (
                bool(seen)
                and all(
                    q.replace("**", "").rsplit(" [", 1)[0].strip() == s.strip()
                    for q, s in zip(quoted, seen, strict=False)
                )
                and len(quoted) == len(seen)
            )
            digits = first_digits(generator.tokens, generator.units)
            ranked = sorted(digits.values(), reverse=True)
            rows.append({
                "id": item["id"], "dataset": short, "reproduced": same,
                "supported": item["verdict"] == "supported", "responsive": item["responsive"],
                "p": answer.evidence[0].probability if answer.evidence else 0.0,
                "margin": (ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)) if ranked else 0.0,
                "p_none": digits.get("0", 0.0),
            })  # fmt: skip
            print(f"\r{short}: {i}/{len(items)}", end="", flush=True)
        print()
    if args.save:
        args.save.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report(rows)


def report(rows: list[dict]) -> None:
    same = [r for r in rows if r["reproduced"]]
    print(f"reproduced {len(same)} of {len(rows)} read answers")
    for label in ("supported", "responsive"):
        ys = [r[label] for r in same]
        line = ", ".join(
            f"{name} {auroc(ys, [sign * r[name] for r in same]):.2f}"
            for name, sign in (("p", 1), ("margin", 1), ("p_none", -1))
        )
        print(f"AUROC for {label} ({sum(ys)} of {len(ys)}): {line}")
    for name, sign, cuts in (("margin", 1, (0.2, 0.4, 0.6)), ("p_none", -1, (-0.05, -0.1, -0.2))):
        for cut in cuts:
            kept = [r for r in same if sign * r[name] >= cut]
            bad = sum(not r["supported"] for r in kept)
            print(f"  {name} gate {abs(cut)}: keeps {len(kept)}, unsupported {bad}")


if __name__ == "__main__":
    main()
