"""Blind reads of delivered answers: make packets a reader labels without knowing how each
answer was made, then join the labels back and count.

    python tools/blind_read.py packets ANSWERS.jsonl... --out DIR [--readers 3] [--seed 7]
    python tools/blind_read.py score DIR

`packets` takes benchmarks/answer_styles.py's answers.jsonl files, keeps the delivered answers
(not abstentions), shuffles them and writes DIR/packet-N.json (what a reader sees: the question,
a reference answer, the answer as shown, its cited passages; never the style or dataset) and
DIR/key.json (which record each item is). A reader fills in each item's `verdict`
("supported" / "unsupported"), `responsive` (true / false), `kind` (the failure, if any),
`why` and `highlight` (the bold inside a quote: "right", "wrong" or "" for none), and saves
it as DIR/read-N.json. `score` joins the reads to the key and prints, per dataset and style,
the delivered answers read, unsupported, and responsive.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path


def shown(record: dict, marks: bool = True) -> str:
    """The answer as an interface shows it: each quoted unit, its copied words in bold inside
    it (`marks`), with the sentences its quote shows around it (render/markdown.py's quote),
    or the written answer as it is."""
    if not record["evidence"]:
        return record["answer"]
    lines = []
    for e in record["evidence"]:
        text, span = e["text"], e["span"]
        if marks and span and span in text:
            before, _, after = text.partition(span)
            text = f"{before}**{span}**{after}"
        text = " ".join(p for p in (e.get("before", ""), text, e.get("after", "")) if p)
        lines.append(f"> {text} [{e['n']}]")
    return "\n".join(lines)


def packets(paths: list[Path], out: Path, readers: int, seed: int) -> None:
    records = []
    for path in paths:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["mode"] != "abstained":
                records.append({**r, "source_file": str(path)})
    # Two arms answered alike (the same question, quote and sources) are one item, read once
    # and counted for both: a paired read of two ways of answering. Passages that differ only
    # in white space (a corpus whose joined paragraphs were set apart) count as the same, and
    # so do quotes that differ only in their bold mark (a highlight, not what is asserted).
    alike: dict[tuple, list[dict]] = {}
    for r in records:
        cited = tuple((c["label"], "".join(c["text"].split())) for c in r["citations"])
        alike.setdefault((r["id"], shown(r, marks=False), cited), []).append(r)
    groups = list(alike.values())
    random.Random(seed).shuffle(groups)
    records = [group[0] for group in groups]
    out.mkdir(parents=True, exist_ok=True)
    key = {}
    for i, group in enumerate(groups):
        key[f"a{i:03d}"] = [
            {k: r[k] for k in ("id", "style", "source_file", "mode")} for r in group
        ]
    (out / "key.json").write_text(json.dumps(key, indent=1))
    for reader in range(readers):
        items = [
            {
                "rid": f"a{i:03d}",
                "question": r["question"],
                "reference": "; ".join(r["references"]),
                "answer": shown(r),
                "cited": [
                    {"n": c["n"], "source": c["label"], "text": c["text"]} for c in r["citations"]
                ],
                "verdict": "",
                "responsive": None,
                "kind": "",
                "why": "",
                "highlight": "",
            }
            for i, r in enumerate(records)
            if i % readers == reader
        ]
        (out / f"packet-{reader + 1}.json").write_text(
            json.dumps(items, indent=1, ensure_ascii=False)
        )
    answers = sum(map(len, groups))
    print(f"{answers} delivered answers, {len(groups)} to read, in {readers} packets under {out}")


def score(folder: Path) -> None:
    key = json.loads((folder / "key.json").read_text())
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    kinds: dict[str, int] = defaultdict(int)
    highlights: dict[str, int] = defaultdict(int)
    for read in sorted(folder.glob("read-*.json")):
        for item in json.loads(read.read_text()):
            entries = key[item["rid"]]
            for k in entries if isinstance(entries, list) else [entries]:  # one, in old reads
                group = (Path(k["source_file"]).parent.name, k["style"])
                c = counts[group]
                c[0] += 1
                c[1] += item["verdict"] == "unsupported"
                c[2] += bool(item["responsive"])
                if item["verdict"] == "unsupported":
                    kinds[item["kind"]] += 1
            highlights[item.get("highlight") or "none"] += 1
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    for (where, style), (n, bad, good) in sorted(counts.items()):
        print(f"{where:24} {style:8} read {n:4}  unsupported {bad:3}  responsive {good:4}")
    n, bad, good = total
    print(f"{'all':33} read {n:4}  unsupported {bad:3} ({bad / max(n, 1):.1%})  "
          f"responsive {good:4} ({good / max(n, 1):.1%})")  # fmt: skip
    for kind, number in sorted(kinds.items(), key=lambda x: -x[1]):
        print(f"  {number:3}  {kind}")
    print("highlights: " + ", ".join(f"{k} {v}" for k, v in sorted(highlights.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("packets", help="make the reading packets")
    make.add_argument("answers", type=Path, nargs="+")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--readers", type=int, default=3)
    make.add_argument("--seed", type=int, default=7)
    count = sub.add_parser("score", help="join the reads to the key and count")
    count.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.command == "packets":
        packets(args.answers, args.out, args.readers, args.seed)
    else:
        score(args.folder)


if __name__ == "__main__":
    main()
