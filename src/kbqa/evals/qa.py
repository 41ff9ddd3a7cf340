"""`kbqa eval qa`: the answerer on a BEIR-layout dataset with reference answers (answers.jsonl).

Every configuration (the extractive answerer, and each generator) answers every question of the
split once, with the abstention threshold switched off, so one run yields both the metrics at
the configured threshold and the whole answered-share vs accuracy curve as it moves. For a
generator the run also yields the "generated only" row (on_unsupported = "abstain"): the same
answers, counting those that fell back to quotes as abstentions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kbqa.assistant import support
from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import Generator
from kbqa.assistant.quote import UNSUPPORTED
from kbqa.assistant.signals import SIGNALS
from kbqa.errors import KbqaError
from kbqa.evals.beir import BeirDataset
from kbqa.evals.metrics import (
    abstention_metrics,
    accuracy_vs_coverage,
    auroc,
    citation_precision_recall,
    exact_match,
    normalize_answer,
    token_f1,
)
from kbqa.evals.qa_report import write
from kbqa.evals.retrieval import corpus_source
from kbqa.settings import Settings
from kbqa.types import Answer

Progress = Callable[[str, int, int], None]
_BLOCK = 32  # questions answered between progress updates (the generator batches within)


@dataclass
class Config:
    """One way of answering: extractive (generator None) or with a generator."""

    label: str
    generator: Generator | None = None


@dataclass(frozen=True)
class Gate:
    """When a recorded answer counts as delivered: the answerer's abstention thresholds
    (settings of the same names), applied afterwards to the records of an ungated run."""

    min_confidence: float = -math.inf
    min_hit_score: float = -math.inf
    # Only for a quote that stands in for the generator's rejected sentences.
    min_quote_confidence: float = -math.inf

    @classmethod
    def of(cls, settings: Settings) -> Gate:
        return cls(settings.min_confidence, settings.min_hit_score, settings.min_quote_confidence)

    @classmethod
    def from_metrics(cls, data: dict) -> Gate:
        """The gate a report's metrics.json was scored at."""
        return cls(
            data["min_confidence"],
            data["min_hit_score"],
            data.get("min_quote_confidence", -math.inf),
        )

    def delivers(self, record: dict) -> bool:
        return (
            record["mode"] != "abstained"
            and record["confidence"] >= self.min_confidence
            and record["cosine"] >= self.min_hit_score
            and (not is_fallback(record) or record["confidence"] >= self.min_quote_confidence)
        )

    def describe(self) -> str:
        return (
            f"min_confidence {self.min_confidence}, min_hit_score (cosine) {self.min_hit_score}"
            f", min_quote_confidence {self.min_quote_confidence} (quotes in place of rejected "
            "sentences)"
        )


def is_fallback(record: dict) -> bool:
    """A quote standing in for a generator's sentences that all failed the check (records
    written before "fallback" was kept: a quote after the generator wrote something)."""
    return record.get("fallback", record["mode"] == "extracted" and record["written"] > 0)


@dataclass
class QaReport:
    dataset: str
    split: str
    questions: int
    rows: dict[str, dict[str, float]]
    support: dict[str, float]
    curves: dict[str, list[tuple[float, float, float]]]
    seconds: dict[str, float]
    gate: Gate
    folder: Path
    records: dict[str, list[dict]] = field(default_factory=dict)
    gated: bool = False  # nothing generated below the gate (see evaluate_qa)


def split_questions(dataset: BeirDataset, split: str, limit: int | None = None) -> list[str]:
    """Ids of the split's questions that have a reference answer, in a stable order."""
    if not dataset.answers:
        raise KbqaError("this dataset has no answers.jsonl: `kbqa eval qa` needs reference answers")
    ids = sorted(q for q, a in dataset.answers.items() if a.get("split") == split)
    if not ids:
        splits = sorted({str(a.get("split")) for a in dataset.answers.values()})
        raise KbqaError(f"no questions in split '{split}' (splits: {', '.join(splits)})")
    return ids[:limit] if limit else ids


def evaluate_qa(
    kb,
    dataset: BeirDataset,
    name: str,
    split: str,
    configs: list[Config],
    out: Path,
    limit: int | None = None,
    progress: Progress | None = None,
    gated: bool = False,
) -> QaReport:
    """Index the corpus in `kb`, answer the split's questions with every config, and write
    report.md, metrics.json, answers-<config>.jsonl and coverage.png into `out`. `gated`: the
    default gate applies while answering, so nothing is generated below it (faster; the same
    figures at the gate, but the curve below it counts those questions as abstentions)."""
    kb.index_sources([corpus_source(dataset, name)])
    qids = split_questions(dataset, split, limit)
    gold = _gold(dataset)
    gate = Gate.of(kb.settings)
    # Off here, applied afterwards: the answer beneath every threshold is needed for the curve.
    unthresholded = (
        kb.settings
        if gated
        else kb.settings.replace(
            min_hit_score=-math.inf, min_confidence=-math.inf, min_quote_confidence=-math.inf
        )
    )
    rows, curves, seconds, records = {}, {}, {}, {}
    for config in configs:
        answerer = Answerer(kb.retriever, config.generator, unthresholded)
        started = time.perf_counter()
        found = []
        for start in range(0, len(qids), _BLOCK):
            block = qids[start : start + _BLOCK]
            answers = answerer.answer_many(
                [dataset.queries[q] for q in block], extractive=config.generator is None
            )
            found += [_record(q, dataset, gold, a) for q, a in zip(block, answers, strict=True)]
            if progress:
                progress(config.label, len(found) - 1, len(qids))
        seconds[config.label] = time.perf_counter() - started
        records[config.label] = found
        rows[config.label] = score(found, gate)
        curves[config.label] = accuracy_vs_coverage(
            [r["correct"] for r in found], [r["confidence"] for r in found]
        )
        if config.generator is not None:
            rows[f"{config.label} (generated only)"] = score(found, gate, generated_only=True)
    if progress:
        progress("support check", 0, 1)
    checked = support_accuracy(kb, dataset, qids, gold)
    out.mkdir(parents=True, exist_ok=True)
    report = QaReport(name, split, len(qids), rows, checked, curves, seconds, gate, out)
    report.records = records
    report.gated = gated
    write(report)
    return report


def _gold(dataset: BeirDataset) -> dict[str, set[str]]:
    return {q: set(docs) for rows in dataset.qrels.values() for q, docs in rows.items()}


def _record(qid: str, dataset: BeirDataset, gold: dict[str, set[str]], answer: Answer) -> dict:
    facts = dataset.answers[qid]
    reference = str(facts.get("answer", ""))
    answerable = bool(facts.get("answerable", qid in gold))
    generated = [s for s, why in answer.dropped if why.startswith(UNSUPPORTED)]
    kept = support.split_sentences(answer.text) if answer.mode == "generated" else []
    prediction = "" if answer.abstained else support.strip_citations(answer.text)
    contains = bool(reference) and normalize_answer(reference) in normalize_answer(prediction)
    return {
        "id": qid,
        "question": answer.question,
        "reference": reference,
        "answerable": answerable,
        "gold": sorted(gold.get(qid, ())),
        "confidence": answer.confidence,
        "cosine": answer.hits[0].score if answer.hits else 0.0,
        "answer": answer.text,
        "mode": "abstained" if answer.abstained else answer.mode,
        # Why it abstained, or why a quote stands in for the generator's sentences.
        "reason": answer.reason,
        "fallback": answer.mode == "extracted" and not answer.abstained and bool(answer.reason),
        "cited": [c.hit.metadata.get("doc_id", c.hit.uri) for c in answer.citations],
        "retrieved": [h.metadata.get("doc_id", h.uri) for h in answer.hits],
        "em": exact_match(prediction, reference) if answerable else 0.0,
        "f1": token_f1(prediction, reference) if answerable else 0.0,
        # The answering span alone (the words the question did not say), as a person reads it.
        "span": answer.span,
        "span_f1": token_f1(answer.span, reference) if answerable else 0.0,
        "contains": contains and answerable,
        # Right: an answerable question answered with the reference answer in it.
        "correct": contains and answerable,
        # The model's own sentences (before the support check) and how many it lost.
        "written": len(generated) + len(kept),
        "rejected": len(generated),
        "dropped": [list(d) for d in answer.dropped],
        # The pointer style: the quoted units, and which named checks dropped a pick.
        "evidence": [
            {
                "text": e.text,
                "span": e.span,
                "before": e.before,
                "after": e.after,
                "p": round(e.probability, 4),
            }
            for e in answer.evidence
        ],
        "findings": sorted({why.split(":")[0] for _, why in answer.dropped} & set(SIGNALS)),
        "timings": {k: round(v, 1) for k, v in answer.timings.items()},
    }


def score(records: list[dict], gate: Gate, generated_only: bool = False) -> dict[str, float]:
    """The metrics of one config when it delivers what `gate` lets through (only its
    generated answers with `generated_only`)."""
    answered = [
        gate.delivers(r) and (r["mode"] == "generated" or not generated_only) for r in records
    ]
    pairs = list(zip(records, answered, strict=True))
    answerable = [(r, a) for r, a in pairs if r["answerable"]]
    delivered = [r for r, a in pairs if a]
    citations = [citation_precision_recall(r["cited"], set(r["gold"])) for r in delivered]
    abstention = abstention_metrics(
        [not r["answerable"] for r in records], [not a for a in answered]
    )
    written = sum(r["written"] for r in records)
    rejected = sum(r["rejected"] for r in records) / written if written else math.nan
    return {
        "answered": _mean([float(a) for a in answered]),
        # An abstention on an answerable question scores 0.
        "em": _mean([r["em"] * a for r, a in answerable]),
        "f1": _mean([r["f1"] * a for r, a in answerable]),
        "span_f1": _mean([r.get("span_f1", 0.0) * a for r, a in answerable]),
        "contains": _mean([float(r["contains"] and a) for r, a in answerable]),
        "citation_precision": _mean([p for p, _ in citations]),
        # On answerable questions only: an answer to an unanswerable one cites no gold passage
        # by definition, which the abstention figures already count.
        "citation_precision_answerable": _mean(
            [p for (p, _), r in zip(citations, delivered, strict=True) if r["answerable"]]
        ),
        "citation_recall": _mean(
            [rec for (_, rec), r in zip(citations, delivered, strict=True) if r["answerable"]]
        ),
        "abstention_precision": abstention["precision"],
        "abstention_recall": abstention["recall"],
        "auroc": auroc([r["answerable"] for r in records], [r["confidence"] for r in records]),
        "auroc_cosine": auroc([r["answerable"] for r in records], [r["cosine"] for r in records]),
        "accuracy_answered": _mean([float(r["correct"]) for r in delivered]),
        # The model's own hallucination rate: its sentences the support check rejects.
        "rejected_sentences": rejected,
    } | {  # how many answers each named check of the pointer style dropped a pick from
        f"dropped_by_{name}": float(sum(name in r.get("findings", ()) for r in records))
        for name in SIGNALS
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def support_pairs(
    dataset: BeirDataset, qids: list[str], gold: dict[str, set[str]], limit: int | None = None
) -> list[tuple[str, str, str, bool]]:
    """(question, answer, gold paragraph, right?) for each question in `qids` whose gold
    paragraph is in the corpus and that has both a right and a hallucinated answer: the right
    one, then the hallucinated one. At most `limit` questions."""
    pairs: list[tuple[str, str, str, bool]] = []
    for qid in qids:
        if limit is not None and len(pairs) >= 2 * limit:
            break
        facts = dataset.answers[qid]
        docs = [d for d in sorted(gold.get(qid, ())) if d in dataset.corpus]
        if docs and facts.get("answer") and facts.get("hallucinated"):
            passage = dataset.corpus[docs[0]][1]
            question = dataset.queries[qid]
            pairs += [(question, facts["answer"], passage, True)]
            pairs += [(question, facts["hallucinated"], passage, False)]
    return pairs


def support_accuracy(
    kb, dataset: BeirDataset, qids: list[str], gold: dict[str, set[str]]
) -> dict[str, float]:
    """How well the support check tells HaluEval's right answer from its hallucinated one, each
    checked against the gold paragraph (answerable questions with both answers only)."""
    pairs = support_pairs(dataset, qids, gold)
    if not pairs:
        return {"pairs": 0} | dict.fromkeys(("accuracy", "right_passed", "wrong_passed"), math.nan)
    s = kb.settings
    sentences = kb.embedder.embed([p[1] for p in pairs])
    asked = kb.embedder.embed([f"{p[0]} {p[1]}" for p in pairs])
    passages = kb.embedder.embed([p[2] for p in pairs])
    verdicts = [
        support.check(
            question,
            [answer],
            [passage],
            sentences[i : i + 1],
            passages[i : i + 1],
            s.support_min_overlap,
            s.support_min_similarity,
            asked[i : i + 1],
        )[0].supported
        for i, (question, answer, passage, _) in enumerate(pairs)
    ]
    right = [v for v, p in zip(verdicts, pairs, strict=True) if p[3]]
    wrong = [v for v, p in zip(verdicts, pairs, strict=True) if not p[3]]
    return {
        "pairs": len(right),
        "accuracy": (sum(right) + len(wrong) - sum(wrong)) / len(pairs),
        "right_passed": sum(right) / len(right),
        "wrong_passed": sum(wrong) / len(wrong),
    }
