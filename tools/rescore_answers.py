"""Re-score the answers a `kbqa eval qa` run recorded (answers-*.jsonl) with today's span rule
(a quote's span: the generator's proposed answer where the quote holds it), without generating
again — exact, since the span is a function of the question, the delivered text and the
rejected sentences: span F1 and citation precision on answerable questions, at the
report's own gate (min_confidence, min_hit_score).

    python tools/rescore_answers.py KBQA_HOME/reports/halueval-qa-qa-…
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kbqa.assistant import support
from kbqa.assistant.quote import proposed_span
from kbqa.assistant.span import answer_span
from kbqa.evals.metrics import token_f1
from kbqa.evals.qa import Gate, score


def main(folder: Path) -> None:
    gate = json.loads((folder / "metrics.json").read_text())
    gate = Gate.from_metrics(gate)
    print(f"{folder.name}: gate {gate.describe()}")
    print(f"{'config':<48} {'F1':>6} {'span F1':>8} {'cit. P':>7} {'cit. P (answerable)':>20}")
    for path in sorted(folder.glob("answers-*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines() if line]
        for r in records:
            first = support.split_sentences(r["answer"])[:1]
            r["span"] = (
                ""
                if r["mode"] == "abstained" or not first
                else answer_span(r["question"], first[0])
            )
            if r["mode"] == "extracted":
                dropped = tuple(tuple(d) for d in r["dropped"])
                r["span"] = proposed_span(r["question"], dropped, r["answer"]) or r["span"]
            r["span_f1"] = token_f1(r["span"], r["reference"]) if r["answerable"] else 0.0
        m = score(records, gate)
        name = path.stem.removeprefix("answers-")
        print(
            f"{name:<48} {m['f1']:>6.3f} {m['span_f1']:>8.3f} {m['citation_precision']:>7.3f}"
            f" {m['citation_precision_answerable']:>20.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a `kbqa eval qa` report folder")
    main(parser.parse_args().folder)
