"""How well the answerer's confidence tells answerable questions from unanswerable ones, and
fitting it.

    python benchmarks/abstention.py          # report the shipped confidence
    python benchmarks/abstention.py --fit    # refit on halueval-qa dev, write confidence.json

Signals (kbqa/assistant/confidence.py) are computed for halueval-qa's dev and test questions
(`kbqa eval prepare halueval-qa` under KBQA_HOME first; the corpus is indexed once under
KBQA_HOME/evals/halueval-qa) and for the handbook's 12 answerable and 7 unanswerable questions.
--fit fits the logistic model on dev only and picks the operating point on dev: the highest
threshold that still answers >= 92 % of dev's answerable questions. Test is only reported.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from kbqa.app import KnowledgeBase
from kbqa.assistant import confidence
from kbqa.evals.beir import load_beir
from kbqa.evals.metrics import auroc
from kbqa.evals.retrieval import corpus_source
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEV_RECALL = 0.92  # share of dev's answerable questions the operating point must answer


def signals(kb: KnowledgeBase, questions: list[str]) -> np.ndarray:
    out = []
    for question in questions:
        hits = kb.retriever.search(question, kb.settings.top_k)
        out.append(confidence.signals(question, hits, kb.retriever.lexical))
    return np.array(out)


def old_confidence(x: np.ndarray) -> np.ndarray:
    """The hand-set mix this replaces: 0.7 x cosine + 0.3 x coverage."""
    return 0.7 * x[:, 0] + 0.3 * x[:, 1]


def report(name: str, y: np.ndarray, x: np.ndarray, model, threshold: float) -> None:
    p = np.array([model.probability(row) for row in x])
    answered = p >= threshold
    print(
        f"{name:22} n={len(y):4} ({int(y.sum())} answerable)  AUROC cosine {auroc(y, x[:, 0]):.3f}"
        f"  old mix {auroc(y, old_confidence(x)):.3f}  learned {auroc(y, p):.3f}  |  at "
        f"{threshold:.2f}: answers {answered[y].mean():.1%} of answerable, abstains on "
        f"{(~answered[~y]).mean():.1%} of unanswerable; Brier {np.mean((p - y) ** 2):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", action="store_true", help="refit on dev, write confidence.json")
    parser.add_argument(
        "--recall",
        type=float,
        default=DEV_RECALL,
        help="with --fit: the share of dev's answerable questions the operating point answers",
    )
    args = parser.parse_args()
    settings = Settings.load()
    folder = settings.home / "datasets" / "halueval-qa"
    if not folder.is_dir():
        raise SystemExit("halueval-qa is not prepared: kbqa eval prepare halueval-qa")
    data = load_beir(folder)
    kb = KnowledgeBase(settings.replace(home=settings.home / "evals" / "halueval-qa"))
    kb.index_sources([corpus_source(data, "halueval-qa")])
    sets = {}
    for split in ("dev", "test"):
        ids = sorted(q for q, a in data.answers.items() if a["split"] == split)
        y = np.array([bool(data.answers[q]["answerable"]) for q in ids])
        sets[split] = (y, signals(kb, [data.queries[q] for q in ids]))
    qa = json.loads((ROOT / "tests" / "data" / "handbook_qa.json").read_text())
    questions = [q["question"] for q in qa["answerable"] + qa["unanswerable"]]
    y = np.array([True] * len(qa["answerable"]) + [False] * len(qa["unanswerable"]))
    with tempfile.TemporaryDirectory() as tmp:
        hb = KnowledgeBase(settings.replace(home=Path(tmp)))
        hb.ingest([ROOT / "examples" / "handbook"])
        sets["handbook"] = (y, signals(hb, questions))
        hb.ingest([ROOT / "examples" / "handbook", ROOT / "examples" / "slack-export"])
        sets["handbook + Slack"] = (y, signals(hb, questions))
    threshold = settings.min_confidence
    model = confidence.shipped()
    if args.fit:
        y_dev, x_dev = sets["dev"]
        model = confidence.fit(x_dev, y_dev.astype(float))
        p = np.sort([model.probability(r) for r in x_dev[y_dev]])
        threshold = float(np.floor(p[int((1 - args.recall) * len(p))] * 100) / 100)
        target = Path(confidence.__file__).with_name("confidence.json")
        target.write_text(json.dumps(model.to_json(), indent=2) + "\n")
        print(f"wrote {target}; operating point on dev: min_confidence = {threshold:.2f}")
        print("weights:", dict(zip(confidence.FEATURES, np.round(model.weights, 3), strict=True)))
    for name, (y, x) in sets.items():
        report(name, y, x, model, threshold)


if __name__ == "__main__":
    main()
