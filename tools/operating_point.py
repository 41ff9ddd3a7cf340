"""Choose the answerer's two abstention thresholds on an ungated `kbqa eval qa` run of dev.

    kbqa eval qa halueval-qa --split dev --no-extractive --out DEV     # ungated: every question
    python tools/operating_point.py DEV [--check TEST]

The answerer abstains below `min_confidence` (a probability from retrieval signals alone, before
anything is generated) and, when every sentence the generator wrote failed the support check,
quotes the passages only at `min_quote_confidence` or above. The rule: of the pairs on a grid,
the one that abstains on the most unanswerable dev questions while still answering >= 92 % of
dev's answerable ones (the same floor as benchmarks/abstention.py); ties go to the higher span
F1, then to the lower thresholds. --check scores another report (test) at the chosen pair; a
gated report is only exact for min_confidence at or above its own gate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from kbqa.evals.qa import Gate, score

DEV_RECALL = 0.92  # share of dev's answerable questions the operating point must answer
GRID = np.round(np.arange(0.30, 0.96, 0.05), 2)


def records(folder: Path) -> list[dict]:
    path = next(p for p in sorted(folder.glob("answers-*.jsonl")) if "extractive" not in p.stem)
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def row(name: str, found: list[dict], gate: Gate) -> str:
    m = score(found, gate)
    answerable = [r for r in found if r["answerable"]]
    own = sum(gate.delivers(r) and r["mode"] == "generated" for r in answerable)
    return (
        f"{name:6} min_confidence {gate.min_confidence:.2f}  min_quote_confidence "
        f"{gate.min_quote_confidence:.2f}: answers {1 - _missed(found, gate):.1%} of answerable,"
        f" abstains on {m['abstention_recall']:.1%} of unanswerable; span F1 {m['span_f1']:.3f},"
        f" cit. P (answerable) {m['citation_precision_answerable']:.3f}, own words "
        f"{own / len(answerable):.1%}"
    )


def _missed(found: list[dict], gate: Gate) -> float:
    answerable = [r for r in found if r["answerable"]]
    return sum(not gate.delivers(r) for r in answerable) / len(answerable)


def choose(found: list[dict], min_hit_score: float, recall: float = DEV_RECALL) -> Gate:
    best, key = None, None
    for low in GRID:
        for quote in (q for q in GRID if q >= low):
            gate = Gate(float(low), min_hit_score, float(quote))
            if 1 - _missed(found, gate) < recall:
                continue
            m = score(found, gate)
            candidate = (m["abstention_recall"], m["span_f1"], -low, -quote)
            if key is None or candidate > key:
                best, key = gate, candidate
    if best is None:
        raise SystemExit(f"no pair answers {recall:.0%} of the answerable questions")
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dev", type=Path, help="an ungated report folder of the dev split")
    parser.add_argument("--check", type=Path, help="another report to score at the chosen pair")
    parser.add_argument("--recall", type=float, default=DEV_RECALL)
    args = parser.parse_args()
    metrics = json.loads((args.dev / "metrics.json").read_text())
    if metrics.get("gated"):
        raise SystemExit(f"{args.dev} is a gated run: below its gate nothing was generated")
    dev = records(args.dev)
    shipped = Gate.from_metrics(metrics)
    chosen = choose(dev, shipped.min_hit_score, args.recall)
    print(row("dev", dev, Gate(shipped.min_confidence, shipped.min_hit_score)), "(one gate)")
    print(row("dev", dev, chosen), "(chosen)")
    if args.check:
        test = records(args.check)
        own = Gate.from_metrics(json.loads((args.check / "metrics.json").read_text()))
        print(row("check", test, Gate(own.min_confidence, own.min_hit_score)), "(one gate)")
        print(row("check", test, chosen), "(chosen)")


if __name__ == "__main__":
    main()
