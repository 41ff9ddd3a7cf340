"""Dense, BM25 and hybrid retrieval over a real database and FAISS index, with a hash embedder;
reranking with the packaged MiniLM."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from kbqa.app import KnowledgeBase
from kbqa.errors import ConfigError, ModelError
from kbqa.retrieval.embedder import HashEmbedder, packaged_embedder_path
from kbqa.retrieval.fusion import convex, reciprocal_rank
from kbqa.retrieval.lexical import LexicalIndex, make_tokenizer
from kbqa.retrieval.rerank import (
    CrossEncoderReranker,
    is_cross_encoder,
    load_reranker,
    make_reranker,
)


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


def test_zscore_fusion_lets_a_lexical_score_that_stands_far_out_win():
    # Thirty candidates: dense falls evenly from 0.60; BM25 is a pack around 4 with one score
    # far above it (the question named that passage's rare words), on dense's 9th.
    dense = {i: round(0.60 - 0.005 * (i - 1), 3) for i in range(1, 31)}
    lexical = {i: 4.0 + 0.1 * (i % 3) for i in range(1, 31)} | {9: 19.0}
    # Min-max makes both lists' best a 1, so at alpha 0.8 dense's best wins; a z-score keeps
    # how far the BM25 score stands out of its pack.
    minmax = convex(dense, lexical, alpha=0.8)
    zscore = convex(dense, lexical, alpha=0.8, normalise="zscore")
    assert max(minmax, key=minmax.get) == 1
    assert max(zscore, key=zscore.get) == 9
    # The same passage merely at the top of the pack does not win.
    level = convex(dense, lexical | {9: 4.3}, alpha=0.8, normalise="zscore")
    assert level[9] < level[1]
    # A list of equal scores carries nothing; an item one list lacks sits at its mean.
    assert convex({1: 0.5, 2: 0.5}, {1: 3.0}, 0.5, "zscore") == {1: 0.0, 2: 0.0}


@pytest.fixture
def ready(kb: KnowledgeBase, docs: Path) -> KnowledgeBase:
    kb.ingest([docs])
    return kb


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("fusion", ["rrf", "convex", "zscore"])
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


@pytest.mark.parametrize("fusion", ["convex", "zscore"])
def test_hybrid_mode_from_settings(settings, docs: Path, fusion):
    kb = KnowledgeBase(
        settings.replace(retrieval_mode="hybrid", fusion=fusion), embedder=HashEmbedder()
    )
    kb.ingest([docs])
    assert (kb.retriever.mode, kb.retriever.fusion) == ("hybrid", fusion)
    assert "02:00" in kb.retriever.search("when do larkdb backups run", 1)[0].text


def test_weighted_reciprocal_rank_follows_the_heavier_ranking():
    fused = reciprocal_rank([[1, 2], [2, 1]], k=10, weights=[1.6, 0.4])
    assert fused[1] == pytest.approx(1.6 / 11 + 0.4 / 12)
    assert max(fused, key=fused.get) == 1
    assert reciprocal_rank([[1, 2], [2, 1]], weights=[1.0, 1.0]) == reciprocal_rank(
        [[1, 2], [2, 1]]
    )


def test_tokenizer_stems_drops_stopwords_and_splits_identifiers():
    tokenize = make_tokenizer("english")
    assert tokenize("Rotating the backups") == ["rotat", "backup"]
    assert tokenize("call __init__ on sys_path") == ["call", "init", "sys", "path"]
    assert make_tokenizer("")("Rotating the backups") == ["rotating", "backups"]


def test_unknown_stemmer_language_is_a_config_error():
    with pytest.raises(ConfigError, match="bm25_stemmer"):
        make_tokenizer("klingon")


def test_stemming_matches_other_forms_of_a_word(ready):
    ready.retriever.mode = "bm25"
    assert "02:00" in ready.retriever.search("backup", 1)[0].text
    ready.retriever.lexical = LexicalIndex(ready.store, stemmer="")
    assert ready.retriever.search("backup", 1) == []


def test_lexical_scores_any_chunk_and_zero_for_unknown_ones(ready):
    ids, scores = ready.retriever.lexical.search("tracker port", 2)
    again = ready.retriever.lexical.score("tracker port", np.array([ids[0], 10**9]))
    assert again[0] == pytest.approx(scores[0]) and again[1] == 0.0
    assert not ready.retriever.lexical.score("zyxxy", ids).any()


@pytest.mark.slow
def test_rerank_reorders_the_top_hits_and_keeps_cosine_scores(ready):
    question = "when are staff given time off over new year?"
    # The hash embedder, like BM25, matches on shared words; the reranker on meaning.
    ready.retriever.mode = "dense"
    before = ready.retriever.search(question, 4)
    assert "24 December" not in before[0].text
    ready.retriever.reranker = make_reranker(str(packaged_embedder_path()), "cpu")
    ready.retriever.rerank_depth = 4
    after = ready.retriever.search(question, 4)
    assert {h.chunk_id for h in after} == {h.chunk_id for h in before}
    assert "24 December" in after[0].text
    rerank_scores = [h.metadata["rerank_score"] for h in after]
    assert rerank_scores == sorted(rerank_scores, reverse=True)
    cosine = {h.chunk_id: h.score for h in before}
    assert all(h.score == pytest.approx(cosine[h.chunk_id]) for h in after)


def test_rerank_depth_limits_what_is_reordered(ready):
    class Reverse:  # scores the passages in the reverse of the order they came in
        def score(self, query, passages):
            return np.arange(len(passages), dtype=np.float32)

    ready.retriever.mode = "bm25"
    plain = [h.chunk_id for h in ready.retriever.search("tracker port larkdb office", 3)]
    ready.retriever.reranker, ready.retriever.rerank_depth = Reverse(), 2
    reranked = [h.chunk_id for h in ready.retriever.search("tracker port larkdb office", 3)]
    assert reranked == [plain[1], plain[0], plain[2]]


def test_a_cross_encoder_folder_is_loaded_as_one(tmp_path: Path):
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path / "tiny-cross-encoder"
    config = BertConfig(
        vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=8, num_labels=1,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (packaged_embedder_path() / name).exists():
            shutil.copy(packaged_embedder_path() / name, folder / name)
    assert is_cross_encoder(str(folder)) and not is_cross_encoder(str(packaged_embedder_path()))
    reranker = load_reranker(str(folder), "cpu")
    assert isinstance(reranker, CrossEncoderReranker)
    assert reranker.score("a question", ["one passage", "another"]).shape == (2,)


def test_a_missing_rerank_model_is_a_one_line_error(ready, tmp_path: Path):
    assert make_reranker("") is None
    ready.retriever.reranker = make_reranker(str(tmp_path / "no-such-model"), "cpu")
    with pytest.raises(ModelError, match="rerank_model") as caught:
        ready.retriever.search("tracker port", 2)
    assert "\n" not in str(caught.value)


def test_rerank_from_settings_is_off_by_default(settings, docs: Path):
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    assert kb.retriever.reranker is None
    kb = KnowledgeBase(settings.replace(rerank_model="all-MiniLM-L6-v2"), embedder=HashEmbedder())
    kb.ingest([docs])
    hits = kb.retriever.search("which port does the tracker service listen on?", 2)
    assert "7300" in hits[0].text and "rerank_score" in hits[0].metadata
