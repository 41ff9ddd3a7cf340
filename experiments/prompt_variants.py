"""Other wordings of the generator's instructions, side by side with today's, on halueval-qa dev.

    python experiments/prompt_variants.py [--report DIR] [--others 50] [-n 140]

Most of the generator's sentences that the support check rejects restate the question
("Rocky Roe officiated in the World Series played by the New York Yankees [1]") and name
something of it that no passage has. Variants:
- "today": the answerer's prompt (`assistant/prompt.py`);
- "answer first": the answer itself first ("a name, a number, a place, a date, yes or no"),
  without repeating the question's words;
- "answer first + example": the same, after one made-up worked exchange (a question about an
  unnamed "she" answered "It opened in 1931 [1].").
Every question is answered by every variant in turn (the same loaded model, the default gate),
so a drift of the machine's speed or state hits them alike. With `--report` (a `kbqa eval qa`
run on dev), the questions are those that run quoted (where the variants could help) and
`--others` seeded ones it did not (where they could hurt), reported apart as well.
Printed per variant: answerable questions answered in the model's own checked words and how
many of those hold the reference answer, "has answer" (the delivered text holds it), span F1,
citation precision on answerable questions, and unanswerable questions abstained on.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from kbqa.app import KnowledgeBase
from kbqa.assistant import prompt
from kbqa.assistant.answerer import Answerer
from kbqa.evals.beir import load_beir
from kbqa.evals.qa import Gate, _gold, _record, score, split_questions
from kbqa.settings import Settings

ANSWER_FIRST = prompt.SYSTEM.replace(
    "Start with the direct answer in one short sentence; add one more sentence only if it is "
    "needed.",
    "Start with the answer itself (a name, a number, a place, a date, yes or no) in one short "
    "sentence; do not repeat the question's words. Add one more sentence only if it is needed.",
)
EXAMPLE = [
    {
        "role": "user",
        "content": "Source [1]: Harbour Museum\n<passage>\nShe designed the museum's north wing, "
        "which opened in 1931 and now holds the map collection.\n</passage>\n\n"
        "Source [2]: Ferry routes\n<passage>\nThe ferry to Lind Island leaves the harbour every "
        "two hours.\n</passage>\n\nQuestion: In what year did the wing designed by the "
        "architect Ada Lind open?",
    },
    {"role": "assistant", "content": "It opened in 1931 [1]."},
]
VARIANTS = {
    "today": (prompt.SYSTEM, []),
    "answer first": (ANSWER_FIRST, []),
    "answer first + example": (ANSWER_FIRST, EXAMPLE),
}


class Worded(Answerer):
    """The answerer with another system prompt, and worked exchanges before the question."""

    system, shots = prompt.SYSTEM, []

    def _messages(self, question, hits, history=()):
        messages = super()._messages(question, hits, history)
        return [{"role": "system", "content": self.system}, *self.shots, *messages[1:]]


def questions(data, args: argparse.Namespace) -> tuple[list[str], set[str]]:
    """The questions to ask, and which of them the report quoted."""
    qids = split_questions(data, "dev")
    if not args.report:
        random.Random(args.seed).shuffle(qids)
        return qids[: args.n], set()
    answers = next(Path(args.report).glob("answers-*Instruct*.jsonl"))
    modes = {r["id"]: r["mode"] for r in map(json.loads, answers.read_text().splitlines())}
    quoted = [q for q in qids if modes.get(q) == "extracted"]
    others = [q for q in qids if q in modes and modes[q] != "extracted"]
    random.Random(1).shuffle(others)
    chosen = quoted + others[: args.others]
    random.Random(2).shuffle(chosen)
    return chosen, set(quoted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", help="a `kbqa eval qa` report folder of a dev run")
    parser.add_argument("--others", type=int, default=50)
    parser.add_argument("-n", type=int, default=140, help="without --report: seeded questions")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    s = Settings.load()
    data = load_beir(s.home / "datasets" / "halueval-qa")
    kb = KnowledgeBase(s.replace(home=s.home / "evals" / "halueval-qa"))
    qids, quoted = questions(data, args)
    gold = _gold(data)
    answerer = Worded(kb.retriever, kb.generator, s)
    answerer.answer("What is the capital of France?")  # warm-up
    records: dict[str, list[dict]] = {label: [] for label in VARIANTS}
    for n, qid in enumerate(qids, 1):
        for label, (system, shots) in VARIANTS.items():
            answerer.system, answerer.shots = system, shots
            records[label].append(_record(qid, data, gold, answerer.answer(data.queries[qid])))
        print(f"\r{n}/{len(qids)} questions", end="", flush=True)
    print()
    groups = {"all": set(qids)} | (
        {"quoted before": quoted, "not quoted before": set(qids) - quoted} if quoted else {}
    )
    for group, ids in groups.items():
        print(f"{group} ({len(ids)} questions)")
        print(
            f"  {'variant':24} {'own words':>13} {'of them right':>13} {'has':>5} "
            f"{'span F1':>7} {'cit. P':>6} {'unans. abstained':>16}"
        )
        for label, rows in records.items():
            rows = [r for r in rows if r["id"] in ids]
            m = score(rows, Gate.of(s))
            answerable = [r for r in rows if r["answerable"]]
            unanswerable = [r for r in rows if not r["answerable"]]
            own = [r for r in answerable if r["mode"] == "generated"]
            abstained = sum(r["mode"] == "abstained" for r in unanswerable)
            share = len(own) / len(answerable)
            print(
                f"  {label:24} {len(own):>5}/{len(answerable):<3} ({share:.2f})"
                f" {sum(r['contains'] for r in own):>7} {m['contains']:>9.2f} "
                f"{m['span_f1']:>7.3f} {m['citation_precision_answerable']:>6.3f} "
                f"{abstained:>10}/{len(unanswerable)}"
            )


if __name__ == "__main__":
    main()
