"""Is the gold page among the passages the answerer is shown? A documentation set, default
settings.

Two knowledge bases of the same manual: "sections", the BEIR corpus of `kbqa eval retrieval`
(one document per section, one chunk each), and "ingest", the manual's HTML pages ingested as a
user would (`kbqa ingest` of the same pages: kbqa's own parsing and chunking). For each
answerable question: the gold page among the top_k hits, first, and among those shown to the
generator (answerer.shown: prompt_passages within prompt_score_gap of the best). For "ingest"
it also counts the chunks that carry raw HTML tags (issue 31 §0).

    python benchmarks/docset_retrieval.py flask-docs /tmp/kbqa-flask
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from kbqa.app import KnowledgeBase
from kbqa.assistant.answerer import Answerer
from kbqa.evals.beir import load_beir
from kbqa.evals.datasets import prepare
from kbqa.evals.docset import DOCSETS, docset_pages
from kbqa.evals.retrieval import corpus_source
from kbqa.settings import Settings

# HTML's own tags only: the manual's text has placeholders like <client fqdn> and <PID>.
TAG = re.compile(
    r"</?(html|head|body|meta|link|script|div|span|p|a|ul|ol|li|pre|table|tr|td|section|h[1-6])"
    r"\b[^<>]*>|<!DOCTYPE",
    re.IGNORECASE,
)


def measure(kb: KnowledgeBase, questions: dict[str, str], gold, answers, page_of) -> dict:
    answerer = Answerer(kb.retriever, None, kb.settings)
    top, first, shown, n_shown, holding, missed = 0, 0, 0, 0, 0, []
    started = time.perf_counter()
    for qid, text in questions.items():
        hits = kb.retriever.search(text, kb.settings.top_k)
        pages = [page_of(h) for h in hits]
        seen = [page_of(h) for h in answerer.shown(hits)]
        # Stricter: a shown passage of a gold page that holds a reference answer itself.
        holding += any(
            page_of(h) in gold[qid] and any(a in " ".join(h.text.split()) for a in answers[qid])
            for h in answerer.shown(hits)
        )
        top += bool(set(pages) & gold[qid])
        if not set(pages) & gold[qid]:
            missed.append(qid)
        first += bool(pages) and pages[0] in gold[qid]
        shown += bool(set(seen) & gold[qid])
        n_shown += len(seen)
    n = len(questions)
    return {
        "top_k": top / n,
        "first": first / n,
        "shown": shown / n,
        "mean_shown": n_shown / n,
        "holding": holding / n,
        "seconds": time.perf_counter() - started,
        "missed": missed,
    }


def main(name: str, home: Path) -> None:
    root = DOCSETS[name].root
    settings = Settings.load(home=home)
    data = load_beir(prepare(name, home / "datasets"))
    answerable = {q: data.queries[q] for q, a in data.answers.items() if a["answerable"]}
    gold = {q: set(data.answers[q]["gold"]) for q in answerable}
    answers = {q: [" ".join(a.split()) for a in data.answers[q]["answers"]] for q in answerable}

    sections = KnowledgeBase(settings.replace(home=home / "evals" / name))
    sections.index_sources([corpus_source(data, name)])
    by_section = measure(
        sections, answerable, gold, answers, lambda h: h.metadata["doc_id"].split("#")[0]
    )

    ingested = KnowledgeBase(settings.replace(home=home / "ingest"))
    ingested.ingest([root / page for page in docset_pages(root)])
    by_ingest = measure(
        ingested,
        answerable,
        gold,
        answers,
        lambda h: Path(h.uri).relative_to(root.resolve()).as_posix(),
    )
    with sqlite3.connect(home / "ingest" / "kbqa.db") as db:
        rows = db.execute(
            "SELECT d.uri, c.text FROM chunks c JOIN documents d ON d.id = c.document_id"
        )
        texts = [(uri, text) for uri, text in rows]
    tagged = [uri for uri, text in texts if TAG.search(text)]

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    s = settings
    print(f"{name} retrieval, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}")
    print(
        f"{len(answerable)} answerable questions; retrieval_mode {s.retrieval_mode}, fusion "
        f"{s.fusion} {s.fusion_alpha}, top_k {s.top_k}, prompt_passages {s.prompt_passages}, "
        f"prompt_score_gap {s.prompt_score_gap}, rerank_model {s.rerank_model or 'off'}"
    )
    print(
        "| knowledge base | chunks | gold page in top_k | first | among shown | shown/q "
        "| shown passage holds an answer |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, kb, m in (("sections", sections, by_section), ("ingest", ingested, by_ingest)):
        chunks = kb.store.counts()["chunks"]
        print(
            f"| {label} | {chunks} | {m['top_k']:.1%} | {m['first']:.1%} | {m['shown']:.1%} "
            f"| {m['mean_shown']:.2f} | {m['holding']:.1%} |"
        )
    pages = sorted({Path(uri).relative_to(root.resolve()).as_posix() for uri in tagged})
    print(f"ingest: {len(tagged)} of {len(texts)} chunks carry raw HTML tags, from {pages}")
    for label, m in (("sections", by_section), ("ingest", by_ingest)):
        print(f"{label}: gold page not in top_k for {' '.join(m['missed'])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(DOCSETS), help="the documentation set")
    parser.add_argument("home", type=Path, help="a scratch KBQA_HOME")
    args = parser.parse_args()
    main(args.name, args.home)
