"""How well the answerer's confidence tells answerable questions from unanswerable ones.

Prints the AUROC of the best hit's cosine alone and of the answerer's confidence (cosine mixed
with the rarity-weighted share of the question's terms in the hit), and the answer/abstain
decisions at a range of thresholds, on:
- the handbook's 12 answerable and 7 unanswerable questions (tests/data/handbook_qa.json),
  without and with the example Slack export;
- halueval-qa's dev split, if `kbqa eval prepare halueval-qa` has been run under KBQA_HOME.

Usage: python benchmarks/abstention.py   (real packaged models; indexes into a temp folder)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from kbqa.app import KnowledgeBase
from kbqa.assistant.answerer import Answerer
from kbqa.evals.datasets import load_beir
from kbqa.evals.metrics import auroc
from kbqa.evals.retrieval import corpus_source
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = [0.24, 0.28, 0.32, 0.36, 0.40, 0.44, 0.48]


def scores(kb: KnowledgeBase, questions: list[str]) -> list[tuple[float, float]]:
    """(cosine of the best hit, answerer confidence) per question."""
    answerer = Answerer(kb.retriever, None, kb.settings)
    out = []
    for question in questions:
        hits = kb.retriever.search(question, kb.settings.top_k)
        cosine = hits[0].score if hits else 0.0
        out.append((cosine, answerer.confidence(question, hits)))
    return out


def report(name: str, labels: list[bool], values: list[tuple[float, float]]) -> None:
    cosine = auroc(labels, [v[0] for v in values])
    mixed = auroc(labels, [v[1] for v in values])
    print(f"\n{name}: {labels.count(True)} answerable, {labels.count(False)} unanswerable")
    print(f"  AUROC  cosine alone {cosine:.3f}   confidence {mixed:.3f}")
    for threshold in THRESHOLDS:
        answered = [v[1] >= threshold for v in values]
        right = sum(a and ok for a, ok in zip(answered, labels, strict=True))
        wrong = sum(a and not ok for a, ok in zip(answered, labels, strict=True))
        print(
            f"  threshold {threshold:.2f}: answers {right}/{labels.count(True)} answerable, "
            f"{wrong}/{labels.count(False)} unanswerable"
        )


def main() -> None:
    settings = Settings.load()
    qa = json.loads((ROOT / "tests" / "data" / "handbook_qa.json").read_text())
    questions = [q["question"] for q in qa["answerable"] + qa["unanswerable"]]
    labels = [True] * len(qa["answerable"]) + [False] * len(qa["unanswerable"])
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(settings.replace(home=Path(tmp)))
        kb.ingest([ROOT / "examples" / "handbook"])
        report("handbook", labels, scores(kb, questions))
        kb.ingest([ROOT / "examples" / "handbook", ROOT / "examples" / "slack-export"])
        report("handbook + Slack export", labels, scores(kb, questions))
    folder = settings.home / "datasets" / "halueval-qa"
    if not folder.is_dir():
        print("\nhalueval-qa: not prepared (kbqa eval prepare halueval-qa)")
        return
    data = load_beir(folder)
    kb = KnowledgeBase(settings.replace(home=settings.home / "evals" / "halueval-qa"))
    kb.index_sources([corpus_source(data, "halueval-qa")])
    dev = sorted(q for q, a in data.answers.items() if a["split"] == "dev")
    report(
        "halueval-qa dev",
        [bool(data.answers[q]["answerable"]) for q in dev],
        scores(kb, [data.queries[q] for q in dev]),
    )


if __name__ == "__main__":
    main()
