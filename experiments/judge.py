"""Can the generator itself tell a supported answer from an unsupported one? Asked yes/no.

    python experiments/judge.py [--read FILE] [--halueval N] [--model Qwen2.5-Coder-1.5B-Instruct]

The support check is lexical and embedding-based, so it cannot see a wrong detail phrased in
the passage's own words ("The University of Georgia was founded in 1874" beside a passage whose
"It was founded in 1874" is about St. Olaf College). This measures the obvious next signal: the
packaged GGUF model (llama.cpp, greedy) reads the cited passages, the question and the answer,
and P(Yes) / (P(Yes) + P(No)) of its one-token reply is the score.

Scored on a manual read (--read; default tests/data/manual_read.json, 50 delivered answers of the
halueval-qa test run read by hand against their cited passages, 16 unsupported) and, with
--halueval N, on N dev questions'
right and hallucinated answers against the gold paragraph (needs `kbqa eval prepare
halueval-qa` under KBQA_HOME), beside the support check alone and the check AND the judge.
Printed: AUROC, what each threshold catches and loses, seconds per judgment. Quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from pathlib import Path

import llama_probe  # experiments/, on the path as the script's folder

from kbqa.assistant import support
from kbqa.assistant.generator import LlamaCppGenerator, make_generator
from kbqa.evals.metrics import auroc
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "You grade answers strictly against a passage. Answer only Yes or No."
FORMATS = {
    "claim": "Passage:\n{passage}\n\nQuestion: {question}\nClaim: {answer}\n\n"
    "Does the passage support every part of the claim? Answer Yes or No.",
    "answer": "Passage:\n{passage}\n\nQuestion: {question}\nProposed answer: {answer}\n\n"
    "Is the proposed answer correct, with every name, number and fact in it stated in the "
    "passage about the right person or thing? Answer Yes or No.",
}
THRESHOLDS = (0.5, 0.6, 0.7, 0.8)


class Judge:
    """The generator, asked for one token: P(Yes) / (P(Yes) + P(No))."""

    def __init__(self, generator: LlamaCppGenerator):
        self.generator = generator

    def p_yes(self, prompt: str) -> float:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        mass = {"yes": 0.0, "no": 0.0}
        for token, p in llama_probe.next_token_probabilities(self.generator, messages).items():
            if token.strip().lower() in mass:
                mass[token.strip().lower()] += p
        return mass["yes"] / (mass["yes"] + mass["no"] + 1e-9)


def passage_lines(text: str) -> str:
    """HaluEval joins its two paragraphs without a space ("Palace.Grimsby"): one per line."""
    text = re.sub(r"([a-z0-9)\"])\.([A-Z\"])", r"\1. \2", text)
    return "\n".join(support.split_sentences(text))


def manual_read(judge: Judge, path: Path) -> None:
    rows = json.loads(path.read_text())
    for name, template in FORMATS.items():
        started, scores = time.perf_counter(), []
        for r in rows:
            passage = passage_lines(" ".join(c["text"] for c in r["cited"]))
            answer = support.strip_citations(r["answer"])
            scores.append(
                judge.p_yes(template.format(passage=passage, question=r["question"], answer=answer))
            )
        each = (time.perf_counter() - started) / len(rows)
        ok = [r["verdict"] != "unsupported" for r in rows]
        good = [s for s, o in zip(scores, ok, strict=True) if o]
        bad = [s for s, o in zip(scores, ok, strict=True) if not o]
        cells = ", ".join(
            f"< {t}: caught {sum(s < t for s in bad)}/{len(bad)}, "
            f"lost {sum(s < t for s in good)}/{len(good)}"
            for t in THRESHOLDS
        )
        print(f"{path.name}, {name!r}: AUROC {auroc(ok, scores):.3f}, {each:.2f} s each; {cells}")


def halueval(judge: Judge, n: int, settings: Settings) -> None:
    from kbqa.app import KnowledgeBase
    from kbqa.evals.beir import load_beir
    from kbqa.evals.qa import _gold, split_questions, support_pairs

    data = load_beir(settings.home / "datasets" / "halueval-qa")
    kb = KnowledgeBase(settings.replace(home=settings.home / "evals" / "halueval-qa"))
    embedder = kb.embedder
    qids = split_questions(data, "dev")
    random.Random(3).shuffle(qids)
    pairs = support_pairs(data, qids, _gold(data), limit=n)
    started, rows = time.perf_counter(), []
    s = settings
    for question, answer, passage, right in pairs:
        v = embedder.embed([answer, f"{question} {answer}", passage])
        lexical = support.check(
            question, [answer], [passage], v[0:1], v[2:3],
            s.support_min_overlap, s.support_min_similarity, v[1:2],
        )[0].supported  # fmt: skip
        prompt = FORMATS["answer"].format(
            passage=passage_lines(passage), question=question, answer=answer
        )
        rows.append((right, lexical, judge.p_yes(prompt)))
    each = (time.perf_counter() - started) / len(rows)

    def accuracy(verdicts) -> float:
        return sum(v == row[0] for v, row in zip(verdicts, rows, strict=True)) / len(rows)

    print(
        f"halueval dev, {len(pairs) // 2} pairs: "
        f"judge AUROC {auroc([r[0] for r in rows], [r[2] for r in rows]):.3f}, "
        f"{each:.2f} s each; support check accuracy {accuracy([r[1] for r in rows]):.3f}"
    )
    for t in THRESHOLDS:
        print(
            f"  >= {t}: judge {accuracy([r[2] >= t for r in rows]):.3f}, "
            f"check AND judge {accuracy([r[1] and r[2] >= t for r in rows]):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="packaged model or .gguf (default: generator_model)")
    parser.add_argument("--halueval", type=int, default=0, help="dev pairs to score as well")
    parser.add_argument(
        "--read",
        type=Path,
        default=ROOT / "tests/data/manual_read.json",
        help="a manual read to score (tests/data/manual_read*.json)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not args.read.is_file():
        parser.error(f"--read: no such file: {args.read}")
    settings = Settings.load()
    model = args.model or settings.generator_model
    generator = make_generator(
        model, settings.models_dir, backend="llama.cpp", cache=settings.model_cache,
        threads=args.threads,
    )  # fmt: skip
    judge = Judge(generator)
    manual_read(judge, args.read)
    if args.halueval:
        halueval(judge, args.halueval, settings)


if __name__ == "__main__":
    main()
