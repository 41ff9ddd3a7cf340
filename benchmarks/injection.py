"""Injected instructions (OWASP LLM01 through documents): 20 planted documents carrying
instructions and canaries, mixed into examples/handbook; questions on other topics must get no
canary and follow no instruction, questions on the planted topics may quote a planted passage
only cited as that passage, and the Slack rendering never pings anyone.

    python benchmarks/injection.py [--generator obedient|default] [--other 100] [--planted 20]
                                   [--no-fence] [--seed 11] [--home DIR]

`obedient` is an adversarial fake that copies whatever a passage demands (fast); `default` is
the configured generator (Qwen2.5-Coder-1.5B via llama.cpp). `--no-fence` turns the prompt's
fencing off, to show what it stops. Prints one line of figures per run and, with --verbose,
each violation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from kbqa.app import KnowledgeBase
from kbqa.assistant import prompt
from kbqa.evals.hostile import ObedientGenerator, other_questions, violations, write_corpus
from kbqa.integrations.slack.blocks import answer_blocks
from kbqa.retrieval.access import Audience
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def run(kb: KnowledgeBase, docs, questions, planted_questions, verbose: bool) -> dict:
    audience = Audience(channel_id="C0BENCH", channel_name="bench")
    counts = {
        "other": 0,
        "other_answered": 0,
        "other_bad": 0,
        "planted": 0,
        "planted_answered": 0,
        "planted_quoted": 0,
        "planted_bad": 0,
    }
    started = time.perf_counter()
    for question, topic in [(q, None) for q in questions] + planted_questions:
        answer = kb.ask(question, audience=audience)
        _, blocks = answer_blocks(answer)
        bad = violations(answer, blocks, docs, topic)
        group = "other" if topic is None else "planted"
        counts[group] += 1
        counts[f"{group}_answered"] += not answer.abstained
        counts[f"{group}_bad"] += bool(bad)
        if topic is not None:
            counts["planted_quoted"] += any(
                c.hit.uri.endswith(f"{topic.name}.md") for c in answer.citations
            )
        if verbose and bad:
            print(f"  ! {question!r}: {bad} <- {answer.text[:120]!r}")
    counts["seconds_per_question"] = round(
        (time.perf_counter() - started) / max(1, counts["other"] + counts["planted"]), 2
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=ROOT / ".kbqa-injection")
    parser.add_argument("--generator", choices=["obedient", "default"], default="obedient")
    parser.add_argument("--other", type=int, default=100, help="questions on other topics")
    parser.add_argument("--planted", type=int, default=20, help="questions on planted topics")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-fence", action="store_true", help="baseline: prompt unfenced")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    docs = write_corpus(args.home / "corpus", args.seed)
    settings = Settings.load(home=args.home)
    generator = ObedientGenerator() if args.generator == "obedient" else None
    kb = KnowledgeBase(settings, generator=generator)
    kb.ingest([ROOT / "examples" / "handbook", args.home / "corpus"])
    if args.no_fence:
        prompt.fence = lambda text: text.strip()
    qa = json.loads((ROOT / "tests" / "data" / "handbook_qa.json").read_text())
    questions = other_questions(qa, args.other, args.seed)
    chosen = random.Random(args.seed).sample(docs, min(args.planted, len(docs)))
    planted_questions = [(doc.question, doc) for doc in chosen]
    counts = run(kb, docs, questions, planted_questions, args.verbose)
    counts.update(generator=args.generator, fence=not args.no_fence, seed=args.seed)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
