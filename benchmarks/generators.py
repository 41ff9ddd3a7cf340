"""Generators side by side on the handbook: answer quality and streamed latency.

    python benchmarks/generators.py [--home DIR] [--model NAME[@backend][#setting=value,…]]...

A label's "#…" part changes settings for that row only: "#prompt_passages=4,prompt_score_gap=1"
is the prompt before the passages shown to the model were cut by score (what "today's path"
means below).

Asks every question of tests/data/handbook_qa.json (12 answerable, 7 not) with each generator,
streamed, after one warm-up question. Per generator: answers in the model's own checked words
("generated"), answers with every key fact, right source cited, unanswerable ones abstained,
and seconds to the first checked sentence and to the whole answer (p50, p90). The first row is
the baseline the others are divided by: today's path, SmolLM2-135M on transformers in fp32.
Run it on a quiet machine: llama.cpp's threads spin and slow badly when the cores are busy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from kbqa.app import KnowledgeBase
from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import make_generator, split_backend
from kbqa.settings import Settings
from kbqa.types import Answer, Evidence

ROOT = Path(__file__).resolve().parents[1]
OLD_PROMPT = "#prompt_passages=4,prompt_score_gap=1"
DEFAULT_MODELS = [
    "SmolLM2-135M-Instruct@transformers" + OLD_PROMPT,
    "SmolLM2-135M-Instruct@transformers",
    "Qwen2.5-Coder-0.5B-Instruct@llama.cpp",
    "Qwen2.5-Coder-1.5B-Instruct@llama.cpp" + OLD_PROMPT,
    "Qwen2.5-Coder-1.5B-Instruct@llama.cpp",
]


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def run(kb: KnowledgeBase, label: str, qa: dict, verbose: bool) -> dict:
    spec, _, changes = label.partition("#")
    model, backend = split_backend(spec)
    s = kb.settings.replace(**dict(c.split("=", 1) for c in changes.split(",") if c))
    generator = make_generator(
        model,
        s.models_dir,
        "cpu",
        s.model_cache,
        backend or "auto",
        s.generator_threads,
        s.generator_precision,
    )
    answerer = Answerer(kb.retriever, generator, s)
    answerer.answer(qa["answerable"][0]["question"])  # warm-up: first-call costs aside
    row = dict(generated=0, facts=0, source=0, abstained=0, first=[], full=[])
    items = [(q, True) for q in qa["answerable"]] + [(q, False) for q in qa["unanswerable"]]
    for item, answerable in items:
        started = time.perf_counter()
        first = None
        for event in answerer.answer_stream(item["question"]):
            # The first checked sentence, or the first quoted unit of a pointed answer.
            if first is None and isinstance(event, str | Evidence):
                first = time.perf_counter() - started
        answer: Answer = event
        full = time.perf_counter() - started
        if not answer.abstained:
            row["first"].append(first if first is not None else full)
            row["full"].append(full)
        if answerable:
            row["generated"] += answer.mode in ("generated", "pointed")
            row["facts"] += all(f.lower() in answer.text.lower() for f in item["answer_contains"])
            row["source"] += any(c.hit.uri.endswith(item["source"]) for c in answer.citations)
        else:
            row["abstained"] += answer.abstained
        if verbose:
            print(f"  [{answer.mode[:3]}] {item['question'][:48]!r} -> {answer.text[:110]!r}")
            for sentence, why in answer.dropped:
                print(f"        dropped {sentence[:60]!r}: {why}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-bench-gen")
    parser.add_argument("--model", action="append", help="NAME or NAME@backend (repeatable)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    qa = json.loads((ROOT / "tests/data/handbook_qa.json").read_text())
    kb = KnowledgeBase(Settings.load(home=args.home, slack_workspace="larkspur", device="cpu"))
    kb.ingest([ROOT / "examples/handbook"])
    n, m = len(qa["answerable"]), len(qa["unanswerable"])
    print(
        f"{'generator':76} {'generated':>9} {'facts':>6} {'source':>6} {'abstain':>7} "
        f"{'first p50':>9} {'full p50':>8} {'full p90':>8} {'vs base':>7}"
    )
    base = None
    for label in args.model or DEFAULT_MODELS:
        row = run(kb, label, qa, args.verbose)
        full = statistics.median(row["full"]) if row["full"] else float("nan")
        base = base or full
        print(
            f"{label:76} {row['generated']:>5}/{n:<3} {row['facts']:>3}/{n:<2} "
            f"{row['source']:>3}/{n:<2} {row['abstained']:>4}/{m:<2} "
            f"{statistics.median(row['first']) if row['first'] else float('nan'):>8.1f}s "
            f"{full:>7.1f}s {p(row['full'], 0.9):>7.1f}s {full / base:>6.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
