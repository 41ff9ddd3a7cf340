"""Does the generator say the same thing when asked again? Self-consistency as a signal.

    python experiments/consistency.py [--read FILE]... [--samples 3] [--temperature 0.8]

SelfCheckGPT's idea: a model that knows the answer repeats it, one that guesses wanders. For
each answer of a manual read (default tests/data/manual_read_fc53e27.json, the read that no
support rule was written from), the question is retrieved and the default prompt rebuilt as the
answerer builds it, in the halueval-qa knowledge base under KBQA_HOME/evals (run `kbqa eval
prepare halueval-qa` first; the corpus is indexed here if it is not yet). The greedy reply must
reproduce the read's answer (else the answer came from other code and is left out). Then:
- reordered: greedy again with the shown passages in reverse order;
- sampled: --samples replies at --temperature, seeds 0, 1, …
Signals, high when consistent: token F1 of the answer with the reordered reply; mean token F1
with the samples; the share of the answer's content words that every sample repeats. Printed:
AUROC of each for telling supported answers from unsupported ones, and what thresholds catch
and lose; seconds per answer. Quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import llama_probe  # experiments/, on the path as the script's folder

from kbqa.app import KnowledgeBase
from kbqa.assistant import support
from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import make_generator
from kbqa.assistant.prompt import build_messages
from kbqa.evals.beir import load_beir
from kbqa.evals.metrics import auroc, normalize_answer, token_f1
from kbqa.evals.retrieval import corpus_source
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.5, 0.7, 0.9)


def plain(text: str) -> str:
    return normalize_answer(support.strip_citations(text))


def repeated_share(answer: str, samples: list[str]) -> float:
    """The share of the answer's content words that every sample has too."""
    wanted = support.content_words(support.strip_citations(answer))
    if not wanted:
        return 1.0
    kept = set.intersection(*(support.content_words(s) for s in samples))
    return len(wanted & kept) / len(wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--read",
        type=Path,
        action="append",
        help="a manual read (tests/data/manual_read*.json); repeat for more",
    )
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--model", help="packaged model or .gguf (default: generator_model)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    reads = args.read or [ROOT / "tests/data/manual_read_fc53e27.json"]
    for path in reads:
        if not path.is_file():
            parser.error(f"--read: no such file: {path}")
    settings = Settings.load()
    folder = settings.home / "datasets" / "halueval-qa"
    if not folder.is_dir():
        parser.error(f"{folder}: missing; run `kbqa eval prepare halueval-qa` first")
    kb = KnowledgeBase(settings.replace(home=settings.home / "evals" / "halueval-qa"))
    kb.index_sources([corpus_source(load_beir(folder), "halueval-qa")])
    generator = make_generator(
        args.model or settings.generator_model, settings.models_dir, backend="llama.cpp",
        cache=settings.model_cache, threads=args.threads,
    )  # fmt: skip
    answerer = Answerer(kb.retriever, generator, kb.settings)
    budget = settings.max_new_tokens

    rows, seen, left_out, started = [], set(), 0, time.perf_counter()
    for path in reads:
        for item in json.loads(path.read_text()):
            if item["answer"] in seen or item["verdict"] not in ("supported", "unsupported"):
                continue
            seen.add(item["answer"])
            question = item["question"]
            hits = kb.retriever.search(question, settings.top_k)
            shown = answerer.focus(question, answerer.shown(hits))  # as Answerer.messages
            prompt = build_messages(question, shown)
            greedy = generator.generate(prompt, budget)
            if plain(item["answer"]) not in plain(greedy):
                left_out += 1
                continue
            reordered = generator.generate(build_messages(question, shown[::-1]), budget)
            samples = [
                llama_probe.sample(generator, prompt, seed, args.temperature, budget)
                for seed in range(args.samples)
            ]
            answer = support.strip_citations(item["answer"])
            rows.append(
                {
                    "supported": item["verdict"] == "supported",
                    "reordered": token_f1(support.strip_citations(reordered), answer),
                    "sampled": sum(token_f1(support.strip_citations(s), answer) for s in samples)
                    / len(samples),
                    "repeated": repeated_share(answer, samples),
                }
            )
    each = (time.perf_counter() - started) / max(1, len(rows) + left_out)
    bad = sum(not r["supported"] for r in rows)
    print(
        f"{len(rows)} answers ({bad} unsupported) reproduced by the greedy reply, "
        f"{left_out} not (left out); {each:.1f} s an answer"
    )
    labels = [r["supported"] for r in rows]
    for signal in ("reordered", "sampled", "repeated"):
        scores = [r[signal] for r in rows]
        low = list(zip(scores, labels, strict=True))
        cells = ", ".join(
            f"< {t}: caught {sum(s < t for s, ok in low if not ok)}/{bad}, "
            f"lost {sum(s < t for s, ok in low if ok)}/{len(rows) - bad}"
            for t in THRESHOLDS
        )
        print(f"{signal}: AUROC {auroc(labels, scores):.3f}; {cells}")


if __name__ == "__main__":
    main()
