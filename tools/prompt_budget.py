"""How much of the retrieved text the generator should read: prompt settings side by side on
halueval-qa dev, same questions, same loaded model, one run.

    python tools/prompt_budget.py [-n 40] [--split dev] [--variants JSON]

Each variant is a dict of settings (prompt_passages, prompt_score_gap, prompt_passage_chars);
every question is answered streamed at the default gate. Printed per variant: the share of
answerable questions answered in the model's own checked words, span F1 and answer F1, "has
answer", citation precision on answerable questions, the share of generated sentences the check
rejected, and the p50 seconds to the first checked sentence and to the whole answer. Needs
`kbqa eval prepare halueval-qa` under KBQA_HOME; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from kbqa.app import KnowledgeBase
from kbqa.assistant.answerer import Answerer
from kbqa.evals.beir import load_beir
from kbqa.evals.qa import Gate, _gold, _record, score, split_questions
from kbqa.settings import Settings

VARIANTS = {
    "all 4 passages, 450 chars": {"prompt_passages": 4, "prompt_score_gap": 1.0},
    "3 passages, 300 chars": {
        "prompt_passages": 3,
        "prompt_score_gap": 1.0,
        "prompt_passage_chars": 300,
    },
    "2 passages, 300 chars": {
        "prompt_passages": 2,
        "prompt_score_gap": 1.0,
        "prompt_passage_chars": 300,
    },
    "3, 300 chars, gap 0.1": {
        "prompt_passages": 3,
        "prompt_score_gap": 0.1,
        "prompt_passage_chars": 300,
    },
    "2 passages": {"prompt_passages": 2, "prompt_score_gap": 1.0},
    "3, gap 0.1 (default)": {"prompt_passages": 3, "prompt_score_gap": 0.1},
    "2, gap 0.1": {"prompt_passages": 2, "prompt_score_gap": 0.1},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=40, help="questions (a seeded sample)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--variants", type=json.loads, help='{"label": {"setting": value}}')
    args = parser.parse_args()
    s = Settings.load()
    data = load_beir(s.home / "datasets" / "halueval-qa")
    kb = KnowledgeBase(s.replace(home=s.home / "evals" / "halueval-qa"))
    qids = split_questions(data, args.split)
    random.Random(args.seed).shuffle(qids)
    qids = qids[: args.n]
    gold = _gold(data)
    generator = kb.generator  # the configured default, loaded once for every variant
    Answerer(kb.retriever, generator, s).answer("What is the capital of France?")  # warm-up
    print(
        f"{'variant':26} {'generated':>9} {'span F1':>7} {'F1':>6} {'has':>5} {'cit. P':>6} "
        f"{'rejected':>8} {'first p50':>9} {'full p50':>8}"
    )
    for label, change in (args.variants or VARIANTS).items():
        answerer = Answerer(kb.retriever, generator, s.replace(**change))
        records, first, full = [], [], []
        started = time.perf_counter()
        for qid in qids:
            answer = answerer.answer(data.queries[qid])
            records.append(_record(qid, data, gold, answer))
            if not answer.abstained:
                full.append(answer.timings["generate_ms"] / 1000)
                if "first_sentence_ms" in answer.timings:
                    first.append(answer.timings["first_sentence_ms"] / 1000)
        m = score(records, Gate.of(s))
        answerable = [r for r in records if r["answerable"]]
        generated = sum(r["mode"] == "generated" for r in answerable) / max(len(answerable), 1)
        print(
            f"{label:26} {generated:>9.2f} {m['span_f1']:>7.3f} {m['f1']:>6.3f} "
            f"{m['contains']:>5.2f} {m['citation_precision_answerable']:>6.3f} "
            f"{m['rejected_sentences']:>8.2f} {_p50(first):>8.2f}s {_p50(full):>7.2f}s"
            f"   ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


if __name__ == "__main__":
    main()
