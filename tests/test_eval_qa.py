"""`kbqa eval qa` on a tiny dataset with reference answers, where every number is known."""

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.cli import cli
from kbqa.errors import KbqaError
from kbqa.evals.beir import load_beir
from kbqa.evals.metrics import token_f1
from kbqa.evals.qa import (
    Config,
    Gate,
    _gold,
    evaluate_qa,
    score,
    split_questions,
    support_pairs,
)
from kbqa.retrieval.embedder import HashEmbedder

DOCS = {
    "d1": "Nightly backups of larkdb run at 02:00 UTC. They are kept for 35 days.",
    "d2": "The tracker service listens on port 7300. It sits behind the gateway.",
    "d3": "The office closes on 24 December. It opens again on 2 January.",
    "d4": "Production deploys happen on weekdays. Fridays after noon are frozen.",
}
# (question, reference answer, hallucinated answer, gold document or None if unanswerable)
QUESTIONS = {
    "q1": ("when do nightly larkdb backups run", "02:00 UTC", "03:30 UTC", "d1"),
    "q2": ("which port does the tracker service listen on", "port 7300", "port 8080", "d2"),
    "q3": ("when does the office close", "24 December", "25 December", "d3"),
    "q4": ("when do production deploys happen", "weekdays", "weekends", "d4"),
    "q5": ("quarterly revenue guidance figures", "12 million", "9 million", None),
    "q6": ("cafeteria vegetarian menu options", "salads", "soup", None),
}


def make_dataset(root: Path, split: str = "test") -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": v[0]}) + "\n" for q, v in QUESTIONS.items())
    )
    answers = [
        {"_id": q, "answer": a, "hallucinated": h, "answerable": g is not None, "split": split}
        for q, (_, a, h, g) in QUESTIONS.items()
    ]
    (root / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    (root / "qrels").mkdir()
    rows = "".join(f"{q}\t{v[3]}\t1\n" for q, v in QUESTIONS.items() if v[3])
    (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return root


@pytest.fixture
def tiny(tmp_path: Path):
    return load_beir(make_dataset(tmp_path / "tiny"))


def test_every_config_is_scored_and_reported(tmp_path: Path, settings, tiny):
    kb = KnowledgeBase(
        settings.replace(min_hit_score=0.0, min_confidence=0.5), embedder=HashEmbedder()
    )
    out = tmp_path / "report"
    configs = [Config("extractive"), Config("echo", EchoGenerator())]
    report = evaluate_qa(kb, tiny, "tiny", "test", configs, out)

    assert set(report.rows) == {"extractive", "echo", "echo (generated only)"}
    echo = report.rows["echo"]
    # The echo generator quotes the first sentence of the best passage, which holds the answer.
    assert echo["contains"] == 1.0
    assert echo["citation_precision"] == 1.0 and echo["citation_recall"] == 1.0
    # The unanswerable questions share no word with the corpus: they, and only they, abstain.
    assert echo["abstention_precision"] == 1.0 and echo["abstention_recall"] == 1.0
    assert echo["auroc"] == 1.0
    assert echo["answered"] == pytest.approx(4 / 6)
    records = {r["id"]: r for r in report.records["echo"]}
    assert records["q1"]["cited"] == ["d1"] and records["q5"]["confidence"] < 0.5
    # F1 is SQuAD's token F1 of the quoted sentence against the reference, averaged.
    expected = [
        token_f1(records[q]["answer"].replace("[1]", ""), QUESTIONS[q][1])
        for q in ["q1", "q2", "q3", "q4"]
    ]
    assert echo["f1"] == pytest.approx(sum(expected) / 4)
    assert 0 < echo["f1"] < 1 and echo["em"] == 0.0

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["questions"] == 6 and metrics["answerable"] == 4
    assert set(metrics["configs"]) == set(report.rows)
    assert metrics["support_check"]["pairs"] == 4
    assert "| echo (generated only) |" in (out / "report.md").read_text()
    assert (out / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out / "answers-echo.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["id"] == "q1"


def test_the_support_check_rejects_answers_with_changed_figures(tmp_path, settings, tiny):
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    report = evaluate_qa(kb, tiny, "tiny", "test", [Config("extractive")], tmp_path / "r")
    # q1-q3's hallucinated answers change a number the passage states.
    assert report.support["wrong_passed"] == 0.0
    assert report.support["accuracy"] == pytest.approx(
        (report.support["right_passed"] + 1 - report.support["wrong_passed"]) / 2
    )


def test_support_pairs_are_the_right_then_the_hallucinated_answer_against_the_gold_text(tiny):
    qids = sorted(QUESTIONS)
    pairs = support_pairs(tiny, qids, _gold(tiny))
    # Only the four answerable questions; each one's right answer first.
    assert [(p[1], p[3]) for p in pairs[:2]] == [("02:00 UTC", True), ("03:30 UTC", False)]
    assert len(pairs) == 8 and {p[2] for p in pairs} == set(DOCS.values())
    assert len(support_pairs(tiny, qids, _gold(tiny), limit=2)) == 4
    # A question whose gold paragraph was withheld from the corpus has nothing to check against.
    del tiny.corpus["d1"]
    assert "02:00 UTC" not in {p[1] for p in support_pairs(tiny, qids, _gold(tiny))}


def test_threshold_moves_answers_to_abstentions():
    records = [
        {"id": "a", "answerable": True, "confidence": 0.9, "cosine": 0.9,
         "mode": "generated", "cited": ["d"],
         "gold": ["d"], "em": 1.0, "f1": 1.0, "contains": True, "correct": True,
         "written": 2, "rejected": 1},
        {"id": "b", "answerable": True, "confidence": 0.5, "cosine": 0.5,
         "mode": "extracted", "cited": ["x"],
         "gold": ["d2"], "em": 0.0, "f1": 0.5, "contains": False, "correct": False,
         "written": 1, "rejected": 1},
        {"id": "c", "answerable": False, "confidence": 0.4, "cosine": 0.6,
         "mode": "extracted", "cited": ["y"],
         "gold": [], "em": 0.0, "f1": 0.0, "contains": False, "correct": False,
         "written": 0, "rejected": 0},
    ]  # fmt: skip
    everything = score(records, Gate(0.0))
    assert everything["answered"] == 1.0 and everything["f1"] == 0.75
    assert everything["citation_precision"] == pytest.approx(1 / 3)
    assert everything["abstention_recall"] == 0.0 and everything["auroc"] == 1.0
    assert everything["rejected_sentences"] == pytest.approx(2 / 3)
    strict = score(records, Gate(0.45))
    assert strict["answered"] == pytest.approx(2 / 3) and strict["abstention_recall"] == 1.0
    # The cosine floor abstains on its own: "b" has the confidence but not the cosine.
    floored = score(records, Gate(0.0, 0.55))
    assert floored["answered"] == pytest.approx(2 / 3) and floored["abstention_recall"] == 0.0
    generated = score(records, Gate(0.0), generated_only=True)
    assert generated["f1"] == 0.5 and generated["citation_precision"] == 1.0
    assert math.isclose(generated["abstention_precision"], 0.5)


def test_a_fallback_quote_is_delivered_only_at_min_quote_confidence():
    def record(mode: str, confidence: float, **extra) -> dict:
        return {"mode": mode, "confidence": confidence, "cosine": 0.9, "written": 1, **extra}

    gate = Gate(min_confidence=0.5, min_quote_confidence=0.8)
    assert gate.delivers(record("generated", 0.6))
    assert not gate.delivers(record("extracted", 0.6, fallback=True))
    assert gate.delivers(record("extracted", 0.85, fallback=True))
    # The extractive answerer's quotes stand in for nothing: min_confidence alone.
    assert gate.delivers(record("extracted", 0.6, fallback=False))
    # Records from before "fallback" was kept: a quote after the generator wrote something.
    assert not gate.delivers(record("extracted", 0.6))
    assert gate.delivers(record("extracted", 0.6, written=0))
    assert not gate.delivers(record("abstained", 0.9))
    assert Gate.from_metrics({"min_confidence": 0.5, "min_hit_score": 0.35}) == Gate(0.5, 0.35)


def test_a_dataset_without_answers_or_split_is_refused(tiny):
    with pytest.raises(KbqaError, match="no questions in split 'dev'"):
        split_questions(tiny, "dev")
    assert split_questions(tiny, "test", limit=2) == ["q1", "q2"]


def test_cli_eval_qa_writes_a_report(tmp_path, monkeypatch):
    make_dataset(tmp_path / "tiny")
    monkeypatch.setenv("KBQA_EMBEDDING_MODEL", "hash")
    monkeypatch.setenv("KBQA_GENERATOR_MODEL", "echo")
    monkeypatch.setenv("KBQA_MIN_HIT_SCORE", "0.0")
    monkeypatch.setenv("KBQA_MIN_CONFIDENCE", "0.2")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["--home", str(tmp_path / "home"), "eval", "qa", str(tmp_path / "tiny"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "| echo |" in result.output and "| extractive |" in result.output
    assert json.loads((out / "metrics.json").read_text())["configs"]["echo"]["auroc"] == 1.0
    with pytest.raises(KbqaError, match=r"no qrels/x\.tsv"):
        CliRunner().invoke(
            cli,
            ["--home", str(tmp_path / "h"), "eval", "qa", str(tmp_path / "tiny"), "--split", "x"],
            catch_exceptions=False,
        )


def test_a_dataset_without_reference_answers_is_refused(tmp_path: Path):
    folder = make_dataset(tmp_path / "tiny")
    (folder / "answers.jsonl").unlink()
    with pytest.raises(KbqaError, match=r"no answers\.jsonl"):
        split_questions(load_beir(folder), "test")


def test_the_pointer_style_is_evaluated_with_its_evidence_and_checks(tmp_path, settings, tiny):
    kb = KnowledgeBase(
        settings.replace(min_hit_score=0.0, min_confidence=0.5, answer_style="pointed"),
        embedder=HashEmbedder(),
    )
    report = evaluate_qa(kb, tiny, "tiny", "test", [Config("echo", EchoGenerator())], tmp_path)
    records = {r["id"]: r for r in report.records["echo"]}
    assert records["q1"]["mode"] == "pointed" and records["q1"]["evidence"]
    assert records["q1"]["evidence"][0]["text"].rstrip(".") in records["q1"]["answer"]
    assert report.rows["echo"]["dropped_by_subject"] == 0.0
    # Each named check's drops are counted from the records' findings.
    found = [dict(records["q1"], findings=["subject"]), records["q2"]]
    assert score(found, Gate())["dropped_by_subject"] == 1.0
