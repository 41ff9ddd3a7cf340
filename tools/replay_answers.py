"""Answer a recorded `kbqa eval qa` run again with today's code, the generator's replies replayed.

    python tools/replay_answers.py KBQA_HOME/reports/halueval-qa-qa-… [--home KBQA_HOME]

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
from kbqa.evals.beir import load_beir
from kbqa.evals.qa import Gate, _gold, _record, score
from kbqa.settings import Settings

_MARK = re.compile(r"\[(\d+)\]")
# The scores shown, by their names in evals.qa.score, with the column each gets.
SHOWN = {
    "answered": "answered",
    "span_f1": "span F1",
    "contains": "has answer",
    "citation_precision_answerable": "cit. P",
    "abstention_recall": "unans. abstained",
}


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


def replay_run(
    report: Path, home: Path | None = None, changes: dict[str, str] | None = None
) -> tuple[list[dict], list[dict], Gate]:
    """(recorded records, replayed records, the report's gate) of a report folder; `changes`
    are settings the recorded run was made with (say fusion=zscore), by name."""
    metrics = json.loads((report / "metrics.json").read_text())
    (path,) = [p for p in report.glob("answers-*.jsonl") if "extractive" not in p.name]
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    home = home or report.parents[1]
    name = metrics["dataset"]
    data = load_beir(home / "datasets" / name)
    kb = KnowledgeBase(Settings().replace(home=home / "evals" / name, **(changes or {})))
    replay = Replay({r["question"]: reply(r) for r in records if r["written"] or r["dropped"]})
    answers = Answerer(kb.retriever, replay, kb.settings).answer_many(
        [r["question"] for r in records]
    )
    if replay.missing:
        print(f"{replay.missing} questions had no recorded reply (a different gate?)")
    gold = _gold(data)
    again = [_record(r["id"], data, gold, a) for r, a in zip(records, answers, strict=True)]
    return records, again, Gate.from_metrics(metrics)


def summary(rows: list[dict], gate: Gate) -> dict[str, float]:
    """Own words (share of answerable questions answered in the model's checked sentences),
    how many of those hold the reference answer, and the scores of `SHOWN`."""
    answerable = [r for r in rows if r["answerable"] and gate.delivers(r)]
    mine = [r for r in answerable if r["mode"] == "generated"]
    total = sum(r["answerable"] for r in rows)
    s = score(rows, gate)
    return {
        "own words": len(mine) / total,
        "own, has ref.": sum(r["correct"] for r in mine),
        "own, lacks ref.": sum(not r["correct"] for r in mine),
        **{column: s[k] for k, column in SHOWN.items()},
    }


def show(rows: dict[str, dict[str, float]]) -> None:
    """A table, one row per labelled summary."""
    keys = list(next(iter(rows.values())))
    print(f"{'':12}" + "".join(f"{k:>17}" for k in keys))
    for label, row in rows.items():
        cells = [f"{v:>17.0f}" if k.startswith("own,") else f"{v:>17.4f}" for k, v in row.items()]
        print(f"{label:12}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="a `kbqa eval qa` report folder")
    parser.add_argument("--home", type=Path, help="KBQA_HOME of that run (default: the report's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting the recorded run was made with (fusion=zscore, min_confidence=0.6)",
    )
    parser.add_argument(
        "--save",
        type=Path,
        help="a report folder to write the replayed run into (metrics.json and answers-*.jsonl, "
        "as `kbqa eval qa` does: tools/read_answers.py reads it)",
    )
    args = parser.parse_args()
    changes = dict(item.split("=", 1) for item in args.set)
    records, again, gate = replay_run(args.report, args.home, changes)
    print(f"{args.report.name} ({len(records)} questions), gate {gate.describe()}")
    show({"recorded": summary(records, gate), "replayed": summary(again, gate)})
    pairs = zip(records, again, strict=True)
    moves = Counter((r["mode"], a["mode"]) for r, a in pairs if r["mode"] != a["mode"])
    print("mode changes:", dict(moves) or "none")
    if args.save:
        save(args.report, args.save, again, gate)


def save(report: Path, folder: Path, records: list[dict], gate: Gate) -> None:
    """The replayed run as a report folder: the recorded run's metrics.json with the replayed
    scores (and where they came from), and the records."""
    metrics = json.loads((report / "metrics.json").read_text())
    (path,) = [p for p in report.glob("answers-*.jsonl") if "extractive" not in p.name]
    label = path.stem.removeprefix("answers-")
    metrics["configs"] = {label: score(records, gate)}
    metrics["replayed_from"] = report.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / path.name).write_text("".join(json.dumps(r) + "\n" for r in records))


if __name__ == "__main__":
    main()
