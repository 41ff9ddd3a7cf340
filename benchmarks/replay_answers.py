"""Answer a recorded `kbqa eval qa` run again with today's code, the generator's replies replayed.

    python benchmarks/replay_answers.py KBQA_HOME/reports/halueval-qa-qa-… [--home KBQA_HOME]

The support check, the quote fallback and the rendering do not change what the generator writes,
so a change to them can be measured on a recorded run in minutes instead of re-generating
(37 minutes for halueval-qa test here). Each question's reply is rebuilt from its record: the
delivered sentences (their citations mapped back to the retrieved passages' numbers) and the
rejected ones, in that order. The real answerer then retrieves from the same knowledge base
(KBQA_HOME/evals/<dataset>), checks, quotes and renders as it does today, and the run is scored
at the report's own gate. Printed: the recorded scores, the replayed ones, and the questions
whose mode changed.

A replay is exact up to two things the record does not keep: the order of the delivered and the
rejected sentences in the reply, and the citation a rejected sentence carried. Replaying with
unchanged code shows how close it comes (the first lines printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from kbqa.app import KnowledgeBase
from kbqa.assistant import support
from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import Messages
from kbqa.evals.datasets import load_beir
from kbqa.evals.qa import Gate, _gold, _record, score
from kbqa.settings import Settings

_MARK = re.compile(r"\[(\d+)\]")
SHOWN = ("answered", "span_f1", "contains", "citation_precision_answerable", "abstention_recall")


def reply(record: dict) -> str:
    """The generator's reply as the record lets us rebuild it (see the module's docstring)."""
    number = {doc: i + 1 for i, doc in enumerate(record["retrieved"])}
    shown = {str(k + 1): str(number.get(doc, 0)) for k, doc in enumerate(record["cited"])}
    kept = []
    if record["mode"] == "generated":
        for sentence in support.split_sentences(record["answer"]):
            kept.append(_MARK.sub(lambda m: f"[{shown.get(m.group(1), m.group(1))}]", sentence))
    return " ".join(kept + [sentence for sentence, _ in record["dropped"]])


class Replay:
    """A generator that writes, for each question, what the recorded run's generator wrote."""

    name = "replay"

    def __init__(self, replies: dict[str, str]):
        self.replies, self.missing = replies, 0

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        question = messages[-1]["content"].rsplit("\n\nQuestion: ", 1)[-1]
        if question not in self.replies:
            self.missing += 1
        return self.replies.get(question, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="a `kbqa eval qa` report folder")
    parser.add_argument("--home", type=Path, help="KBQA_HOME of that run (default: the report's)")
    parser.add_argument("--save", type=Path, help="write the replayed records here (jsonl)")
    args = parser.parse_args()
    metrics = json.loads((args.report / "metrics.json").read_text())
    gate = Gate.from_metrics(metrics)
    (path,) = [p for p in args.report.glob("answers-*.jsonl") if "extractive" not in p.name]
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    home = args.home or args.report.parents[1]
    name = metrics["dataset"]
    data = load_beir(home / "datasets" / name)
    settings = Settings().replace(home=home / "evals" / name)
    kb = KnowledgeBase(settings)
    replay = Replay({r["question"]: reply(r) for r in records if r["written"] or r["dropped"]})
    answerer = Answerer(kb.retriever, replay, kb.settings)
    gold = _gold(data)
    answers = answerer.answer_many([r["question"] for r in records])
    again = [_record(r["id"], data, gold, a) for r, a in zip(records, answers, strict=True)]
    before, after = score(records, gate), score(again, gate)
    print(f"{args.report.name} ({len(records)} questions), gate {gate.describe()}")

    def own(rows: list[dict]) -> str:
        answerable = [r for r in rows if r["answerable"]]
        mine = sum(r["mode"] == "generated" and gate.delivers(r) for r in answerable)
        return f"{mine} ({mine / len(answerable):.1%})"

    print(f"{'':10}" + "".join(f"{k:>32}" for k in ("own words", *SHOWN)))
    for label, rows, s in (("recorded", records, before), ("replayed", again, after)):
        print(f"{label:10}{own(rows):>32}" + "".join(f"{s[k]:>32.4f}" for k in SHOWN))
    moves = Counter(
        (r["mode"], a["mode"])
        for r, a in zip(records, again, strict=True)
        if r["mode"] != a["mode"]
    )
    print("mode changes:", dict(moves) or "none", f"(replies not found: {replay.missing})")
    if args.save:
        args.save.write_text("".join(json.dumps(a) + "\n" for a in again))


if __name__ == "__main__":
    main()
