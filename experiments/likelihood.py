"""Does the generator's own confidence tell a supported answer from an unsupported one?

    python experiments/likelihood.py

The hand-read answers (`tests/data/manual_read*.json`: halueval-qa test answers, each judged
supported or not by its cited passage) are asked again with the default generator (llama.cpp),
which now also returns each written token's log-probability. Where the answer comes out word
for word as it was read (and generated, not quoted), its verdict labels these signals:
- the mean log-probability and the least probable token of the first sentence;
- the first token's probability;
- the same for the tokens of the answer's span (`answer_span`: "Jack the Ripper" in "Whitechapel
  depicted a copycat of Jack the Ripper [1]").
Printed: how many answers were labelled, each signal's AUROC (supported vs not), and for the
best one what a threshold would catch and lose. Needs `kbqa eval prepare halueval-qa` and the
halueval-qa knowledge base of a `kbqa eval` run under KBQA_HOME; takes ~10 minutes here.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import llama_probe  # experiments/, on the path as the script's folder

from kbqa.app import KnowledgeBase
from kbqa.assistant import support
from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import LlamaCppGenerator, Messages
from kbqa.assistant.span import answer_span
from kbqa.evals.beir import load_beir
from kbqa.evals.metrics import auroc
from kbqa.settings import Settings

READS = Path(__file__).resolve().parents[1] / "tests" / "data"


class Recording:
    """The llama.cpp generator, keeping the tokens (and log-probabilities) of its last reply."""

    def __init__(self, generator: LlamaCppGenerator):
        self.generator, self.name = generator, generator.name
        self.tokens: list[tuple[str, float]] = []

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        text, self.tokens = llama_probe.generate_scored(self.generator, messages, max_new_tokens)
        return text


def signals(question: str, answer: str, tokens: list[tuple[str, float]]) -> dict[str, float]:
    """The confidence signals of one reply (see the module's docstring)."""
    end = next((i for i, (t, _) in enumerate(tokens) if "[" in t), len(tokens))
    first = [lp for _, lp in tokens[:end]] or [lp for _, lp in tokens]
    out = {
        "first sentence, mean log-p": sum(first) / len(first),
        "first sentence, least p": math.exp(min(first)),
        "first token p": math.exp(tokens[0][1]),
    }
    span = answer_span(question, support.strip_citations(support.split_sentences(answer)[0]))
    text = "".join(t for t, _ in tokens).lower()
    at = text.find(span.lower()) if span else -1
    if at >= 0:
        chars, inside = 0, []
        for token, lp in tokens:
            if chars < at + len(span) and chars + len(token) > at:
                inside.append(lp)
            chars += len(token)
        out["span, mean log-p"] = sum(inside) / len(inside)
        out["span, least p"] = math.exp(min(inside))
    return out


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    verdicts: dict[str, dict[str, str]] = {}
    for path in sorted(READS.glob("manual_read*.json")):
        for row in json.loads(path.read_text()):
            verdicts.setdefault(row["id"], {})[" ".join(row["answer"].split())] = row["verdict"]
    s = Settings.load()
    data = load_beir(s.home / "datasets" / "halueval-qa")
    kb = KnowledgeBase(s.replace(home=s.home / "evals" / "halueval-qa"))
    if not isinstance(kb.generator, LlamaCppGenerator):
        raise SystemExit("the configured generator does not run on llama.cpp")
    recording = Recording(kb.generator)
    answerer = Answerer(kb.retriever, recording, s)
    labelled: list[tuple[bool, dict[str, float], str]] = []
    for n, qid in enumerate(sorted(verdicts), 1):
        question = data.queries[qid]
        answer = answerer.answer(question)
        verdict = verdicts[qid].get(" ".join(answer.text.split()))
        if answer.mode == "generated" and verdict and recording.tokens:
            scores = signals(question, answer.text, recording.tokens)
            labelled.append((verdict == "supported", scores, answer.text))
        print(f"\r{n}/{len(verdicts)} questions, {len(labelled)} labelled", end="", flush=True)
    print()
    bad = sum(not ok for ok, _, _ in labelled)
    print(f"{len(labelled)} generated answers as they were read: {bad} unsupported")
    best, best_auc = "", 0.0
    for name in labelled[0][1] if labelled else []:
        pairs = [(ok, sig[name]) for ok, sig, _ in labelled if name in sig]
        value = auroc([ok for ok, _ in pairs], [x for _, x in pairs])
        print(f"  {name:28} AUROC {value:.3f}  (n={len(pairs)})")
        if value > best_auc:
            best, best_auc = name, value
    if best:
        print(f"Below a threshold on {best!r}: unsupported caught / supported lost")
        values = sorted(sig[best] for _, sig, _ in labelled if best in sig)
        for q in (0.1, 0.2, 0.3):
            cut = values[int(q * len(values))]
            low = [ok for ok, sig, _ in labelled if best in sig and sig[best] < cut]
            print(f"  {cut:8.3f} (lowest {q:.0%}): {low.count(False)} / {low.count(True)}")


if __name__ == "__main__":
    main()
