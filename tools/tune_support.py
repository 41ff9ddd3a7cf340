"""Grid-search the support check's thresholds on labelled examples and print accuracy.

    python tools/tune_support.py [--halueval DATASET_FOLDER]

tests/data/support_examples.json pairs a question, a cited handbook passage and a candidate
sentence with a label and an origin: "smollm2" for 20 unsupported sentences that the packaged
SmolLM2-135M really wrote for these questions while the answerer was built, "hand" for the rest
(copies, paraphrases and partial answers; invented instructions, restatements of the question,
wrong details and off-topic sentences written in a small model's style).

With --halueval (a folder made by `kbqa eval prepare halueval-qa`) the grid is also scored on
HaluEval's dev split: each question's right and hallucinated answer against its gold paragraph,
accuracy = share of the two told apart correctly. The default is the point that reaches 0.80
there without rejecting more of the handbook's right sentences.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np

from kbqa.assistant import support
from kbqa.ingest import parse_file
from kbqa.retrieval.embedder import SentenceTransformerEmbedder
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def load_examples() -> tuple[list[dict], list[str]]:
    examples = json.loads((ROOT / "tests/data/support_examples.json").read_text())
    passages = []
    for ex in examples:
        chunks = parse_file(ROOT / "examples/handbook" / ex["source"]).chunks
        passages.append(next(c.text for c in chunks if ex["heading"] in c.heading))
    return examples, passages


def verdicts(examples, passages, vectors, min_overlap, min_similarity):
    """The real check's verdict on every example; `vectors` = (sentence, question + sentence,
    passage) embeddings."""
    sv, av, pv = vectors
    return np.array(
        [
            support.check(
                ex["question"],
                [ex["sentence"]],
                [p],
                sv[i : i + 1],
                pv[i : i + 1],
                min_overlap,
                min_similarity,
                av[i : i + 1],
            )[0].supported
            for i, (ex, p) in enumerate(zip(examples, passages, strict=True))
        ]
    )


def embed(embedder, examples: list[dict], passages: list[str]):
    return (
        embedder.embed([ex["sentence"] for ex in examples]),
        embedder.embed([f"{ex['question']} {ex['sentence']}" for ex in examples]),
        embedder.embed(passages),
    )


def halueval_pairs(folder: Path) -> tuple[list[dict], list[str]]:
    """HaluEval dev: right and hallucinated answers as examples against the gold paragraph."""
    from kbqa.evals.beir import load_beir

    data = load_beir(folder)
    gold = {q: sorted(d) for rows in data.qrels.values() for q, d in rows.items()}
    examples, passages = [], []
    for qid, facts in sorted(data.answers.items()):
        docs = [d for d in gold.get(qid, []) if d in data.corpus]
        if facts["split"] != "dev" or not docs or not facts.get("hallucinated"):
            continue
        for sentence, right in ((facts["answer"], True), (facts["hallucinated"], False)):
            examples.append(
                {
                    "question": data.queries[qid],
                    "sentence": sentence,
                    "supported": right,
                    "kind": "halueval",
                }
            )
            passages.append(data.corpus[docs[0]][1])
    return examples, passages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--halueval", type=Path, help="a prepared halueval-qa folder")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    examples, passages = load_examples()
    vectors = embed(embedder, examples, passages)
    labels = np.array([ex["supported"] for ex in examples])
    print(f"{len(labels)} examples, {labels.sum()} supported")
    grid = {
        (round(float(o), 2), round(float(s), 2)): verdicts(examples, passages, vectors, o, s)
        for o in np.arange(0.3, 0.95, 0.05)
        for s in np.arange(0.2, 0.75, 0.05)
    }
    accuracy = {key: float(np.mean(v == labels)) for key, v in grid.items()}
    best = max(accuracy.values())
    ties = sorted(key for key, a in accuracy.items() if a == best)
    print(f"best accuracy {best:.3f} at (overlap, similarity) = {', '.join(map(str, ties))}")
    s = Settings()
    default = verdicts(examples, passages, vectors, s.support_min_overlap, s.support_min_similarity)
    invented = [v for ex, v in zip(examples, default, strict=True) if ex["kind"] == "invented"]
    print(
        f"defaults ({s.support_min_overlap}, {s.support_min_similarity}): accuracy "
        f"{np.mean(default == labels):.3f}; precision {labels[default].mean():.3f}; "
        f"recall {default[labels].mean():.3f}; invented passed {sum(invented)}/{len(invented)}"
    )
    for ex, v in zip(examples, default, strict=True):
        if v != ex["supported"]:
            print(f"  wrong: {ex['kind']:12} {ex['sentence'][:80]!r}")
    if args.halueval:
        pairs, paragraphs = halueval_pairs(args.halueval)
        hv = embed(embedder, pairs, paragraphs)
        truth = np.array([ex["supported"] for ex in pairs])
        print(f"\nhalueval-qa dev: {truth.sum()} right and {(~truth).sum()} hallucinated answers")
        for o in (0.5, 0.55, 0.6, 0.65, 0.7):
            for sim in (0.4, 0.45, 0.5):
                v = verdicts(pairs, paragraphs, hv, o, sim)
                print(
                    f"  ({o}, {sim}): accuracy {np.mean(v == truth):.3f}; right passed "
                    f"{v[truth].mean():.3f}; hallucinated passed {v[~truth].mean():.3f}; "
                    f"handbook accuracy {np.mean(grid.get((o, sim), v[:0]) == labels):.3f}"
                )


if __name__ == "__main__":
    main()
