"""Dense, BM25 and hybrid retrieval over a real database and FAISS index, with a hash embedder."""

from pathlib import Path

import pytest

from kbqa.app import KnowledgeBase
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.retrieval.fusion import convex, reciprocal_rank


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = reciprocal_rank([[1, 2, 3], [3, 1, 4]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert sorted(fused, key=lambda i: -fused[i])[:2] == [1, 3]
    assert fused[4] == pytest.approx(1 / 63)


def test_convex_fusion_normalises_each_list_and_weighs_them():
    dense = {1: 0.9, 2: 0.5, 3: 0.1}
    lexical = {3: 12.0, 4: 2.0}
    fused = convex(dense, lexical, alpha=0.5)
    assert fused[1] == pytest.approx(0.5)  # best dense, absent from BM25
    assert fused[3] == pytest.approx(0.5)  # worst dense, best BM25
    assert fused[2] == pytest.approx(0.25) and fused[4] == pytest.approx(0.0)
    assert convex(dense, lexical, alpha=1.0)[1] == pytest.approx(1.0)


@pytest.fixture
def ready(kb: KnowledgeBase, docs: Path) -> KnowledgeBase:
    kb.ingest([docs])
    return kb


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("fusion", ["rrf", "convex"])
def test_every_mode_finds_the_passage_and_reports_cosine_scores(ready, mode, fusion):
    ready.retriever.mode, ready.retriever.fusion = mode, fusion
    hits = ready.retriever.search("which port does the tracker service listen on?", 3)
    assert "7300" in hits[0].text
    vector = ready.embedder.embed(["which port does the tracker service listen on?"])[0]
    stored = ready.retriever.vectors(hits[:1])[0]
    assert hits[0].score == pytest.approx(float(stored @ vector), abs=1e-5)


def test_bm25_follows_changes_and_deletions(ready, docs: Path):
    ready.retriever.mode = "bm25"
    assert "7300" in ready.retriever.search("tracker port", 1)[0].text
    (docs / "ports.md").write_text("# Services\n\nThe tracker service moved to port 9300.\n")
    (docs / "notes.txt").unlink()
    ready.ingest([docs])
    assert "9300" in ready.retriever.search("tracker port", 1)[0].text
    assert all("24 December" not in h.text for h in ready.retriever.search("office closed", 5))


def test_bm25_with_no_known_word_returns_nothing(ready):
    ready.retriever.mode = "bm25"
    assert ready.retriever.search("zyxxy qwertz", 3) == []


def test_near_duplicate_passages_are_collapsed(kb: KnowledgeBase, docs: Path, tmp_path: Path):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "ports-copy.md").write_text((docs / "ports.md").read_text())
    kb.ingest([docs, copy])
    hits = kb.retriever.search("which port does the tracker service listen on?", 3)
    assert sum("7300" in h.text for h in hits) == 1


def test_source_filter_keeps_only_named_sources(ready):
    answer = ready.ask(
        "which port does the tracker listen on?", extractive=True, sources=["runbooks/"]
    )
    assert answer.hits and all("/runbooks/" in h.uri for h in answer.hits)
    answer = ready.ask(
        "which port does the tracker listen on?", extractive=True, sources=["*/ports.md"]
    )
    assert [h.uri.endswith("ports.md") for h in answer.hits] == [True]


def test_hybrid_mode_from_settings(settings, docs: Path):
    kb = KnowledgeBase(
        settings.replace(retrieval_mode="hybrid", fusion="convex"), embedder=HashEmbedder()
    )
    kb.ingest([docs])
    assert (kb.retriever.mode, kb.retriever.fusion) == ("hybrid", "convex")
    assert "02:00" in kb.retriever.search("when do larkdb backups run", 1)[0].text
