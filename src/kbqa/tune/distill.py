"""Training targets the generator wrote itself: its own answers to training questions that were
right and that the support check passed whole (rejection-sampling fine-tuning, as in STaR).

`kbqa tune data`'s halueval targets are the reference phrase and a copied passage sentence
("Drama [2]. The Great Santini is a 1979 American drama film [2]."): after 40 LoRA steps the
1.5B model answered in bare phrases and said "I don't know" too often (docs/tuning.md). Here the
targets are the model's own full sentences, kept only when

- the answer was generated (not quoted, not abstained) and no sentence of it was dropped,
- it holds the reference answer, and
- it cites exactly the gold passage(s).

The input is the per-question file of `kbqa eval qa halueval-qa --split train`; each kept
answer's prompt is rebuilt as the answerer built it (same retrieval, same focused passages),
so training sees what answering sees. Abstention examples come from `kbqa tune data`'s file, as
a fixed share of the result."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from kbqa.assistant.answerer import Answerer
from kbqa.errors import KbqaError
from kbqa.evals.beir import BeirDataset
from kbqa.tune.data import evaluation_questions
from kbqa.tune.examples import read_examples
from kbqa.types import Hit

SOURCE = "halueval-own"
ABSTAIN_SHARE = 0.10


def why_not(record: dict[str, Any]) -> str | None:
    """Why an evaluated answer is no training target, or None when it is one."""
    if not record.get("answerable"):
        return "unanswerable"
    if record.get("mode") != "generated":
        return str(record.get("mode"))  # "abstained" or "extracted"
    if record.get("dropped"):
        return "a sentence failed the check"
    if not record.get("contains"):
        return "lacks the reference"
    if set(record.get("cited", [])) != set(record.get("gold", [])):
        return "cites another passage"
    return None


def distilled_examples(
    kb, dataset: BeirDataset, answers: Path
) -> tuple[list[dict[str, Any]], Counter]:
    """Training examples from the kept answers in `answers` (an eval's answers-*.jsonl), and
    the count of every reason an answer was not kept. `kb` is the dataset's knowledge base."""
    train = dataset.qrels.get("train", {})
    held_out = evaluation_questions(dataset)
    answerer = Answerer(kb.retriever, None, kb.settings)
    out, skipped = [], Counter()
    for line_number, line in enumerate(answers.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            qid, question = record["id"], record["question"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise KbqaError(f"{answers}:{line_number}: not an answer record ({exc})") from exc
        if qid not in train or question in held_out:
            raise KbqaError(
                f"{answers}:{line_number}: {qid} is not a training question: give the "
                "answers-*.jsonl of `kbqa eval qa halueval-qa --split train`"
            )
        reason = why_not(record)
        if reason is None:
            hits = kb.retriever.search(question, kb.settings.top_k)
            if [_doc_id(h) for h in hits] != record["retrieved"]:
                reason = "retrieval differs from the evaluated run"
        if reason:
            skipped[reason] += 1
            continue
        gold = [n for n, h in enumerate(hits, 1) if _doc_id(h) in record["gold"]]
        out.append(
            {
                "source": SOURCE,
                "id": qid,
                "question": question,
                "messages": answerer.messages(question, hits),
                "reply": record["answer"],
                "gold": gold,
            }
        )
    return out, skipped


def _doc_id(hit: Hit) -> str:
    """The dataset's document id ("k1038") of a hit from the eval's knowledge base, as the
    eval's records name documents."""
    return hit.uri.rsplit(":", 1)[-1]


def with_abstentions(
    examples: list[dict[str, Any]],
    pool: Path,
    share: float = ABSTAIN_SHARE,
    seed: int = 13,
) -> list[dict[str, Any]]:
    """`examples` plus abstention examples from `pool` (`kbqa tune data`'s file), so that they
    make up `share` of the result, shuffled."""
    if not 0 <= share < 1:
        raise KbqaError(f"abstention share must be in [0, 1), not {share}")
    abstain = [e for e in read_examples(pool) if e["source"] == "halueval-abstain"]
    wanted = round(share * len(examples) / (1 - share))
    if wanted > len(abstain):
        raise KbqaError(
            f"{pool}: {len(abstain)} abstention examples, {wanted} wanted: "
            "lower --abstain-share or rerun `kbqa tune data`"
        )
    rng = random.Random(seed)
    mixed = examples + rng.sample(abstain, wanted)
    rng.shuffle(mixed)
    return mixed
