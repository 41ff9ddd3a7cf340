"""Generated answers to questions asked at once, against the same questions asked one by one.

    python benchmarks/concurrent_generation.py [--questions 8] [--slots 2,4] [--home DIR]

With the packaged default generator (llama.cpp) and the default answer style, in one run:
a warm-up, the handbook's first answerable questions one by one with one slot (today's way:
each is a lone question), then, for each slot count, all of them at once through the
generation queue (assistant/queue.py), two channels taking turns. Prints per slot count:
total time / one-by-one total (target <= 0.85), the first answer's time / the median time of a
question asked alone (target <= 1.3; also / that same question's time alone), the mean time to
an answer / one by one's, and how many answers differ from their one-by-one answer (greedy:
target 0). Bounded: about (1 + slot counts) x the one-by-one time; 8 questions take ~3 min on
2 quiet cores, far longer on busy ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from kbqa.app import KnowledgeBase
from kbqa.assistant.queue import call
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def key(answer) -> tuple:
    """What must not change between one by one and at once: the words and what they rest on."""
    return (answer.text, answer.abstained, tuple((e.n, e.text, e.span) for e in answer.evidence))


def one_by_one(kb: KnowledgeBase, questions: list[str]) -> tuple[list[float], list[float], list]:
    """(each question's own time, its finish time from the start, the answers)."""
    started, alone, done, answers = time.perf_counter(), [], [], []
    for question in questions:
        before = time.perf_counter()
        answers.append(kb.ask(question))
        alone.append(time.perf_counter() - before)
        done.append(time.perf_counter() - started)
    return alone, done, answers


def at_once(kb: KnowledgeBase, questions: list[str]) -> tuple[float, list[float], list]:
    """All questions asked by threads released together; each one's finish time."""
    queue = kb._services.models.queue
    gate = threading.Barrier(len(questions) + 1)
    done: list[float] = [0.0] * len(questions)
    answers: list = [None] * len(questions)
    started = [0.0]

    def ask(i: int) -> None:
        gate.wait()
        # Two channels, as a team's bot would see: the queue takes them in turn.
        with queue.enter(f"channel-{i % 2}") as ticket:
            answers[i] = call(ticket, kb.ask, questions[i])
        done[i] = time.perf_counter() - started[0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    started[0] = time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join()
    return max(done), done, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8, help="how many asked at once")
    parser.add_argument("--slots", default="2,4", help="slot counts to try, comma-separated")
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-bench-concurrent")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    settings = Settings.load(home=args.home, device="cpu", generator_slots=1)
    kb = KnowledgeBase(settings)
    if kb.store.counts()["chunks"] == 0:
        kb.ingest([ROOT / "examples/handbook"])
    qa = json.loads((ROOT / "tests/data/handbook_qa.json").read_text())
    questions = [item["question"] for item in qa["answerable"]][: args.questions]
    print(
        f"{kb.settings.generator_model}, answer_style {kb.settings.answer_style}, "
        f"{len(questions)} questions, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )

    kb.ask("How do I get access to the VPN?")  # warm-up: model loaded, caches filled
    alone, serial_done, serial_answers = one_by_one(kb, questions)
    serial = serial_done[-1]
    # Only answers the model wrote: an abstention before the model is instant either way.
    # (and not one the model answers in a blink: SEV2's took 0.1 s alone on 2026-12-05).
    generated = [
        i for i, a in enumerate(serial_answers) if a.timings.get("generate_ms") and alone[i] >= 1.0
    ]
    print(
        f"one by one {serial:.1f} s (a question alone {min(alone):.1f}-{max(alone):.1f} s, "
        f"{len(generated)} of {len(questions)} written by the model)"
    )
    rows = []
    for slots in [int(s) for s in args.slots.split(",")]:
        kb.settings = dataclasses.replace(kb.settings, generator_slots=slots)
        kb.ask("How do I get access to the VPN?")  # the new server loaded and warm
        total, done, answers = at_once(kb, questions)
        differ = sum(key(a) != key(b) for a, b in zip(answers, serial_answers, strict=True))
        first = min(generated or range(len(questions)), key=lambda i: done[i])
        row = {
            "slots": slots,
            "total_ratio": total / serial,
            # Against a typical lone question: one that the model answers in a blink (a
            # prompt it had just read) would make any wait look long.
            "first_ratio": done[first] / statistics.median(alone),
            "first_same_question_ratio": done[first] / alone[first],
            "done_s": done,
            "mean_ratio": statistics.mean(done) / statistics.mean(serial_done),
            "differ": differ,
        }
        rows.append(row)
        print(
            f"{slots} slots: total {row['total_ratio']:.2f}x one by one (target <= 0.85), "
            f"first answer {row['first_ratio']:.2f}x the median lone question (target <= 1.3; "
            f"{row['first_same_question_ratio']:.2f}x the same question alone), "
            f"mean time to an answer {row['mean_ratio']:.2f}x, "
            f"{differ} of {len(questions)} answers differ (target 0)"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"alone_s": alone, "serial_s": serial, "rows": rows}))


if __name__ == "__main__":
    main()
