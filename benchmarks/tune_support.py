"""Grid-search the support check's thresholds on labelled examples and print accuracy.

    python benchmarks/tune_support.py

tests/data/support_examples.json pairs a question, a cited handbook passage and a candidate
sentence with a label and an origin: "smollm2" for 20 unsupported sentences that the packaged
SmolLM2-135M really wrote for these questions while the answerer was built, "hand" for the rest
(copies, paraphrases and partial answers; invented instructions, restatements of the question,
wrong details and off-topic sentences written in a small model's style).
"""

from __future__ import annotations

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


def verdicts(examples, passages, sentence_vectors, passage_vectors, min_overlap, min_similarity):
    """The real check's verdict on every example."""
    return np.array(
        [
            support.check(
                ex["question"],
                [ex["sentence"]],
                [p],
                sv[None],
                pv[None],
                min_overlap,
                min_similarity,
            )[0].supported
            for ex, p, sv, pv in zip(
                examples, passages, sentence_vectors, passage_vectors, strict=True
            )
        ]
    )


def main() -> None:
    embedder = SentenceTransformerEmbedder()
    examples, passages = load_examples()
    sv = embedder.embed([ex["sentence"] for ex in examples])
    pv = embedder.embed(passages)
    labels = np.array([ex["supported"] for ex in examples])
    print(f"{len(labels)} examples, {labels.sum()} supported")
    grid = {
        (round(float(o), 2), round(float(s), 2)): verdicts(examples, passages, sv, pv, o, s)
        for o in np.arange(0.3, 0.95, 0.05)
        for s in np.arange(0.2, 0.75, 0.05)
    }
    accuracy = {key: float(np.mean(v == labels)) for key, v in grid.items()}
    best = max(accuracy.values())
    ties = sorted(key for key, a in accuracy.items() if a == best)
    print(f"best accuracy {best:.3f} at (overlap, similarity) = {', '.join(map(str, ties))}")
    s = Settings()
    default = verdicts(examples, passages, sv, pv, s.support_min_overlap, s.support_min_similarity)
    invented = [v for ex, v in zip(examples, default, strict=True) if ex["kind"] == "invented"]
    print(
        f"defaults ({s.support_min_overlap}, {s.support_min_similarity}): accuracy "
        f"{np.mean(default == labels):.3f}; precision {labels[default].mean():.3f}; "
        f"recall {default[labels].mean():.3f}; invented passed {sum(invented)}/{len(invented)}"
    )
    for ex, v in zip(examples, default, strict=True):
        if v != ex["supported"]:
            print(f"  wrong: {ex['kind']:12} {ex['sentence'][:80]!r}")


if __name__ == "__main__":
    main()
