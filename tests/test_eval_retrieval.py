"""`kbqa eval retrieval` on a tiny BEIR-layout dataset: the report folder and its numbers."""

import json
from pathlib import Path

import pytest

from kbqa.app import KnowledgeBase
from kbqa.evals.beir import load_beir
from kbqa.evals.retrieval import RETRIEVERS, evaluate_retrieval
from kbqa.retrieval.embedder import HashEmbedder

DOCS = {
    "d1": ("Backups", "Nightly backups of larkdb run at 02:00 UTC and are kept for 35 days."),
    "d2": ("Ports", "The tracker service listens on port 7300 behind the gateway."),
    "d3": ("Holidays", "The office closes from 24 December to 1 January."),
    "d4": ("Deploys", "Production deploys happen on weekdays before 16:00 Pacific."),
}
QUERIES = {
    "q1": "when do larkdb backups run",
    "q2": "tracker service port",
    "q3": "office closes december",
    "q4": "production deploys weekdays",
}


def make_beir(root: Path) -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUERIES.items())
    )
    (root / "qrels").mkdir()
    rows = "".join(f"q{n}\td{n}\t1\n" for n in range(1, 5))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return root


def test_every_retriever_is_evaluated_and_reported(tmp_path: Path, settings):
    data = load_beir(make_beir(tmp_path / "tiny"))
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    out = tmp_path / "report"
    report = evaluate_retrieval(kb, data, "tiny", "test", out)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "tiny" and metrics["queries"] == 4
    assert set(metrics["retrievers"]) == set(RETRIEVERS)
    for values in metrics["retrievers"].values():
        assert set(values) >= {"ndcg@10", "recall@1", "recall@10", "mrr@10"}
    # Every query shares its distinctive words with exactly its document.
    assert report.metrics["bm25"]["recall@1"] == 1.0
    assert report.metrics["bm25"]["mrr@10"] == 1.0
    assert "| bm25 |" in (out / "report.md").read_text()
    assert (out / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = evaluate_retrieval(kb, data, "tiny", "test", tmp_path / "again")
    assert kb.store.counts()["documents"] == 4  # the corpus is indexed once, not twice
    assert again.metrics == report.metrics


@pytest.mark.slow
def test_a_configured_reranker_adds_a_rerank_row_and_the_retriever_is_restored(
    tmp_path: Path, settings
):
    data = load_beir(make_beir(tmp_path / "tiny"))
    kb = KnowledgeBase(
        settings.replace(retrieval_mode="hybrid", rerank_model="all-MiniLM-L6-v2"),
        embedder=HashEmbedder(),
    )
    report = evaluate_retrieval(kb, data, "tiny", "test", tmp_path / "report")
    assert set(report.metrics) == set(RETRIEVERS) | {"rerank"}
    assert report.metrics["rerank"]["recall@1"] == 1.0
    assert kb.retriever.mode == "hybrid" and kb.retriever.reranker is not None
