"""Freshness on its fixture (tests/data/freshness): does kbqa deliver the current value of a
superseded fact, say that a source disagreed, and still use an older source where it is right?

Builds the fixture's git repository (two commits of the ledger runbook, its lingering wiki
copy, the facts and handbook docs) and ingests it with the Slack export, then asks each
question of questions.json and prints:
- current: the answer gives the current value (superseded facts; target >= 90 %);
- shown: the answer says a source disagreed or a thread corrected itself (target >= 80 %);
- controls: the older source's value delivered where it is still right (target >= 90 %);
- per thread cue: precision and recall of the corrections found at ingest.

By default the fast fakes answer: the hashing embedder, and a pointer that names the shown
unit sharing most words with the question (what a model is asked to do, without a model), so
the figures measure kbqa's ordering, not a model. `--model packaged` uses the real embedder
and the packaged generator (slow on a CPU: use --limit).

    PYTHONPATH=src python benchmarks/freshness.py [--model packaged] [--limit N] [--off]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "gitrepo", ROOT / "tests" / "data" / "freshness" / "gitrepo.py"
)
gitrepo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gitrepo)


class OverlapPointer:
    """A fake generator for the pointed style: names the unit that shares most content words
    with the question (ties: the first), copying its first words."""

    name = "overlap-pointer"

    def point(self, messages, grammar: str, max_new_tokens: int = 64) -> Iterator[tuple]:
        from kbqa.assistant.text import content_words

        prompt = messages[-1]["content"]
        question = prompt.rsplit("Question:", 1)[-1]
        asked = content_words(question)
        units = re.findall(r"^\[(\d+)\] (.+)$", prompt, re.M)
        if not units:
            yield "[0]", []
            return
        best = max(units, key=lambda u: len(asked & content_words(u[1])))
        yield f"[{best[0]}] {' '.join(best[1].split()[:4])}", []

    def generate(self, messages, max_new_tokens: int = 96) -> str:
        return "I don't know."


def _kb(home: Path, packaged: bool, off: bool, recency_tie: float = 0.0):
    from kbqa.app import KnowledgeBase
    from kbqa.retrieval.embedder import HashEmbedder
    from kbqa.settings import Settings

    settings = Settings(
        home=home,
        slack_workspace="quillhaven",
        min_hit_score=0.05,
        min_confidence=0.0,
        recency_tie=recency_tie,
    )
    if packaged:
        return KnowledgeBase(settings)
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=OverlapPointer())
    if off:  # the same answer path without the freshness ordering, for comparison
        import kbqa.assistant.freshness as freshness

        freshness.prefer_newer = lambda question, hits: (hits, [])
    return kb


def run(packaged: bool, limit: int | None, off: bool, recency_tie: float = 0.0) -> dict:
    from kbqa.ingest.slack_export import read_export

    data = gitrepo.questions()
    questions = data["questions"]
    if limit:  # spread over every kind: the fixture lists them kind by kind
        questions = questions[:: max(1, len(questions) // limit)][:limit]
    with tempfile.TemporaryDirectory() as tmp:
        repo, export = gitrepo.build(Path(tmp))
        kb = _kb(Path(tmp) / "home", packaged, off, recency_tie)
        kb.ingest([repo, export])
        rows, started = [], time.perf_counter()
        for q in questions:
            answer = kb.ask(q["question"])
            text = answer.text.lower()
            rows.append(
                {
                    **q,
                    "delivered": q["current"].lower() in text,
                    "old_only": bool(q.get("older"))
                    and q["older"].lower() in text
                    and q["current"].lower() not in text,
                    "shown": bool(answer.updated)
                    and bool(q.get("older"))
                    and q["older"].lower() in answer.updated.lower(),
                    "false_note": bool(q.get("newer_other"))
                    and q["newer_other"].lower() in answer.updated.lower(),
                    "answer": answer.text,
                    "updated": answer.updated,
                }
            )
        seconds = time.perf_counter() - started
        documents, _ = read_export(export, "quillhaven", False, 1 << 20)
        cues = gitrepo.cue_scores(documents, data["threads"])
    return {"rows": rows, "seconds": seconds, "cues": cues}


def report(result: dict) -> None:
    rows = result["rows"]
    fresh = [r for r in rows if r["kind"] != "control"]
    controls = [r for r in rows if r["kind"] == "control"]

    def share(part: list, of: list) -> str:
        return f"{len(part)}/{len(of)} ({100 * len(part) / max(len(of), 1):.0f} %)"

    print(f"superseded facts: {len(fresh)}, controls: {len(controls)}")
    print(f"current value delivered: {share([r for r in fresh if r['delivered']], fresh)}")
    print(f"  older value only:      {share([r for r in fresh if r['old_only']], fresh)}")
    print(f"disagreement shown:      {share([r for r in fresh if r['shown']], fresh)}")
    for kind in ("runbook", "thread", "announcement"):
        part = [r for r in fresh if r["kind"] == kind]
        if part:
            ok = [r for r in part if r["delivered"]]
            shown = [r for r in part if r["shown"]]
            print(f"  {kind:<13} current {share(ok, part)}, shown {share(shown, part)}")
    right = [r for r in controls if r["delivered"] and not r["false_note"]]
    print(f"older source used where still right: {share(right, controls)}")
    print(f"  a disagreement claimed where none is: {sum(r['false_note'] for r in controls)}")
    print("thread corrections per cue (at ingest):")
    for cue, s in sorted(result["cues"].items()):
        precision = s["tp"] / max(s["tp"] + s["fp"], 1)
        recall = s["tp"] / max(s["tp"] + s["fn"], 1)
        print(f"  {cue:<11} precision {precision:.2f} recall {recall:.2f} ({s})")
    print(f"({len(rows)} questions in {result['seconds']:.1f} s)")
    misses = [r for r in rows if not r["delivered"] or r.get("false_note")]
    misses += [r for r in fresh if r["delivered"] and not r["shown"]]
    for r in misses:
        print(f"  miss {r['id']}: {r['question']} -> {r['answer'][:90]!r} | {r['updated'][:90]!r}")


def retrieval(datasets: list[str], ties: list[float], home: Path) -> None:
    """nDCG@10 of the configured retrieval (the hashing embedder) on BEIR-layout datasets, for
    each recency_tie: the tie-breaker must not lose nDCG where it changes nothing to gain."""
    from kbqa.app import KnowledgeBase
    from kbqa.evals.beir import load_beir
    from kbqa.evals.datasets import build_python_faq
    from kbqa.evals.metrics import retrieval_metrics
    from kbqa.evals.retrieval import configured, corpus_source, run_queries
    from kbqa.retrieval.embedder import HashEmbedder
    from kbqa.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        for name in datasets:
            folder = home / "datasets" / name
            if name == "python-faq" and not folder.exists():
                folder = build_python_faq(Path(tmp) / "python-faq")
            data = load_beir(folder)
            split = "test" if "test" in data.qrels else next(iter(data.qrels))
            kb = KnowledgeBase(Settings(home=Path(tmp) / name), embedder=HashEmbedder())
            kb.index_sources([corpus_source(data, name)])
            qrels = data.qrels[split]
            queries = {q: data.queries[q] for q in qrels}
            cells = []
            for tie in ties:
                with configured(kb.retriever, {"recency_tie": tie}) as retriever:
                    run_ = run_queries(retriever, queries)
                cells.append(f"tie {tie:g}: {retrieval_metrics(qrels, run_)['ndcg@10']:.4f}")
            print(f"{name} ({split}, {len(queries)} queries) nDCG@10 " + ", ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["fakes", "packaged"], default="fakes")
    parser.add_argument(
        "--limit", type=int, default=None, help="ask N questions, spread over the kinds"
    )
    parser.add_argument("--off", action="store_true", help="without the newer-first ordering")
    parser.add_argument("--recency-tie", type=float, default=0.0, help="the setting, for a run")
    parser.add_argument(
        "--retrieval",
        nargs="*",
        metavar="DATASET",
        help="instead: nDCG@10 with recency_tie 0 and 0.02 on these datasets",
    )
    parser.add_argument(
        "--home", type=Path, default=Path.home() / ".kbqa", help="where datasets/ lies"
    )
    args = parser.parse_args(argv)
    if args.retrieval:
        retrieval(args.retrieval, [0.0, 0.02], args.home)
        return 0
    report(run(args.model == "packaged", args.limit, args.off, args.recency_tie))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
