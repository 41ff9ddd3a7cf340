"""Answer styles side by side, in one run: free text + check, the pointer path, and the pointer
path behind its confidence gate (the same pointed answers, the gate applied afterwards).

    python benchmarks/answer_styles.py handbook [--save DIR]
    python benchmarks/answer_styles.py halueval-qa --limit 100 [--save DIR]
    python benchmarks/answer_styles.py DATASET --split test --styles pointed

`handbook` is tests/data/handbook_qa.json over examples/handbook; any other name is a dataset
prepared with `kbqa eval prepare NAME` (or a BEIR folder). Prints, per style: answered,
unanswerable abstained, the reference in the answer, the right source cited, how answers were
made, and p50 latency to the first shown sentence or evidence and to the whole answer. `--save`
writes each answer with its cited passages (answers.jsonl) for a blind read
(tools or `read_answers`-style sampling reads it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from kbqa.app import KnowledgeBase
from kbqa.settings import Settings
from kbqa.types import Answer, Evidence, Quoted

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("free", "pointed")


def handbook(home: Path) -> tuple[KnowledgeBase, list[dict]]:
    qa = json.loads((ROOT / "tests/data/handbook_qa.json").read_text())
    kb = KnowledgeBase(Settings.load(home=home, slack_workspace="larkspur"))
    kb.ingest([ROOT / "examples/handbook"])
    items = [
        {"id": f"h{i}", "question": q["question"], "answerable": True, "gold": [q["source"]],
         "references": q["answer_contains"], "match": "all"}
        for i, q in enumerate(qa["answerable"], 1)
    ] + [
        {"id": f"u{i}", "question": q["question"], "answerable": False, "gold": [],
         "references": [], "match": "all"}
        for i, q in enumerate(qa["unanswerable"], 1)
    ]  # fmt: skip
    return kb, items


def dataset(
    home: Path, name: str, split: str, limit: int | None, seed: int | None, skip: set[str]
) -> tuple[KnowledgeBase, list]:
    from kbqa.evals.beir import load_beir
    from kbqa.evals.qa import corpus_source, split_questions

    folder = Path(name) if Path(name).is_dir() else home / "datasets" / name
    data = load_beir(folder)
    kb = KnowledgeBase(Settings.load(home=home / "evals" / folder.name))
    kb.index_sources([corpus_source(data, folder.name)])
    gold = {q: sorted(d) for rows in data.qrels.values() for q, d in rows.items()}
    qids = [q for q in split_questions(data, split) if q not in skip]
    if seed is not None:  # a sample spread over the split, the same for the same seed
        qids = sorted(random.Random(seed).sample(qids, min(limit or len(qids), len(qids))))
    items = []
    for qid in qids[:limit]:
        facts = data.answers[qid]
        # Several acceptable answers (borg-docs) count when any is there; one when it is.
        refs = facts.get("answers") or ([facts["answer"]] if facts.get("answer") else [])
        items.append({
            "id": qid, "question": data.queries[qid], "gold": gold.get(qid, []),
            "answerable": bool(facts.get("answerable", qid in gold)), "references": refs,
            "match": "any",
        })  # fmt: skip
    return kb, items


class Replies(logging.Handler):
    """The pointer's last raw reply, as the answer path logs it (saved with each answer)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last = ""
        log = logging.getLogger("kbqa.assistant.pointed")
        log.setLevel(logging.DEBUG)
        log.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("pointer reply"):
            self.last = record.args[0]


REPLIES = Replies()


def ask(kb: KnowledgeBase, question: str) -> tuple[Answer, float | None, float]:
    """The answer, seconds to the first thing shown (a checked sentence or evidence; None if
    nothing was streamed before the Answer), and seconds to the whole answer."""
    started, first = time.perf_counter(), None
    REPLIES.last = ""
    for event in kb.ask_stream(question):
        if first is None and isinstance(event, Evidence | str) and not isinstance(event, Quoted):
            first = time.perf_counter() - started
    return event, first, time.perf_counter() - started


def _holds(item: dict, text: str) -> bool:
    found = [r.casefold() in text.casefold() for r in item["references"]]
    return bool(found) and (all(found) if item["match"] == "all" else any(found))


def record(item: dict, style: str, answer: Answer, first: float | None, total: float) -> dict:
    units = " ".join(e.text for e in answer.evidence) if answer.evidence else answer.text
    cited = [c.hit.metadata.get("doc_id", c.hit.uri) for c in answer.citations]
    return {
        **item, "style": style, "mode": "abstained" if answer.abstained else answer.mode,
        "answer": answer.text, "span": answer.span, "reason": answer.reason,
        "evidence": [{"n": e.n, "text": e.text, "span": e.span, "p": e.probability,
                      "margin": e.margin, "before": e.before, "after": e.after}
                     for e in answer.evidence],
        # The reference in what is shown, and in the units the model named alone (a quote
        # shows a sentence with its neighbours: quote_context_chars).
        "has_reference": not answer.abstained and _holds(item, answer.text),
        "reference_in_units": not answer.abstained and _holds(item, units),
        "right_source": any(any(c.endswith(g) for g in item["gold"]) for c in cited),
        "citations": [{"n": c.n, "label": c.hit.label, "uri": c.hit.uri, "text": c.hit.text}
                      for c in answer.citations],
        "dropped": [list(d) for d in answer.dropped],
        "first_s": first, "total_s": total, "reply": REPLIES.last,
    }  # fmt: skip


def gated(rows: list[dict], threshold: float) -> list[dict]:
    """The pointed answers as `pointer_min_probability = threshold` would deliver them: units
    the model was less sure of are dropped, and an answer left with none abstains."""
    out = []
    for r in rows:
        kept = [e for e in r["evidence"] if e["p"] >= threshold]
        if r["mode"] == "pointed" and not kept:
            r = {**r, "mode": "abstained", "has_reference": False, "right_source": False}
        elif r["mode"] == "pointed":
            quotes = " ".join(" ".join([e["before"], e["text"], e["after"]]) for e in kept)
            has = _holds(r, quotes)
            r = {**r, "evidence": kept, "has_reference": has}
        out.append(r)
    return out


def summary(label: str, rows: list[dict]) -> str:
    answerable = [r for r in rows if r["answerable"]]
    other = [r for r in rows if not r["answerable"]]
    delivered = [r for r in rows if r["mode"] != "abstained"]
    modes = {m: sum(r["mode"] == m for r in rows) for m in ("pointed", "generated", "extracted")}
    firsts = [r["first_s"] for r in rows if r["first_s"] is not None]
    totals = [r["total_s"] for r in delivered]

    def share(part: list, whole: list) -> str:
        return f"{len(part)}/{len(whole)}" if whole else "-"

    return " | ".join([
        f"{label:16}",
        share([r for r in answerable if r["mode"] != "abstained"], answerable),
        share([r for r in other if r["mode"] == "abstained"], other),
        share([r for r in answerable if r["has_reference"]], answerable),
        share([r for r in answerable if r.get("reference_in_units")], answerable),
        share([r for r in delivered if r["right_source"]], delivered),
        " ".join(f"{m} {n}" for m, n in modes.items() if n),
        f"{statistics.median(firsts):.1f}" if firsts else "-",
        f"{statistics.median(totals):.1f}" if totals else "-",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="handbook, or a prepared dataset name / BEIR folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="N questions of the split (the first N)")
    parser.add_argument("--seed", type=int, help="with --limit: a random N, seeded")
    parser.add_argument(
        "--exclude", type=Path, nargs="*", default=[],
        help="answers.jsonl files whose questions are left out (a fresh sample for a new read)",
    )  # fmt: skip
    parser.add_argument("--styles", default=",".join(STYLES), help="free,pointed")
    parser.add_argument("--gate", type=float, default=0.3, help="the pointer gate to report")
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-bench")
    parser.add_argument("--save", type=Path, help="write answers.jsonl here")
    args = parser.parse_args()
    if args.dataset == "handbook":
        kb, items = handbook(args.home)
    else:
        missing = [str(f) for f in args.exclude if not f.is_file()]
        if missing:
            parser.error(f"--exclude: no answers file at {missing[0]} (run with --save first)")
        skip = {json.loads(line)["id"] for f in args.exclude for line in f.open()}
        kb, items = dataset(args.home, args.dataset, args.split, args.limit, args.seed, skip)
    base, results = kb.settings, {}
    for style in args.styles.split(","):
        kb.settings = base.replace(answer_style=style)
        results[style] = []
        for i, item in enumerate(items, 1):
            answer, first, total = ask(kb, item["question"])
            results[style].append(record(item, style, answer, first, total))
            print(f"\r{style}: {i}/{len(items)}", end="", flush=True)
        print()
    if "pointed" in results:
        results[f"pointed+gate {args.gate}"] = gated(results["pointed"], args.gate)
    print(f"{args.dataset} ({len(items)} questions), {time.strftime('%Y-%m-%d')}")
    print("style            | answerable answered | unanswerable abstained | has reference "
          "| in the named units | right source | made | p50 first s | p50 full s")  # fmt: skip
    for label, rows in results.items():
        print(summary(label, rows))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        with (args.save / "answers.jsonl").open("w") as f:
            for style in args.styles.split(","):
                for row in results[style]:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"answers: {args.save / 'answers.jsonl'}")


if __name__ == "__main__":
    main()
