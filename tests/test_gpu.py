"""The GPU path: faiss's GPU index and torch on cuda. Runs only where a CUDA GPU is visible
(`pytest -m gpu` on a GPU machine with `kbqa[gpu]` installed)."""

import numpy as np
import pytest

from kbqa.retrieval.index import VectorIndex, gpu_count

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(gpu_count() == 0, reason="faiss sees no GPU on this machine"),
]


def test_gpu_search_matches_cpu_and_saves_a_cpu_index(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 2010, dtype=np.int64)
    cpu, gpu = VectorIndex(384), VectorIndex(384, use_gpu=True)
    for index in (cpu, gpu):
        index.add(ids, vectors)
    assert gpu.use_gpu
    queries = vectors[:20]
    (cpu_scores, cpu_ids), (gpu_scores, gpu_ids) = cpu.search(queries, 5), gpu.search(queries, 5)
    assert (cpu_ids == gpu_ids).all()
    assert np.allclose(cpu_scores, gpu_scores, atol=1e-4)
    gpu.remove(ids[:1])  # the GPU copy is rebuilt from the CPU master after a change
    assert gpu.search(queries[:1], 1)[1][0, 0] != ids[0]
    gpu.save(tmp_path / "index.faiss")
    reopened = VectorIndex.load(tmp_path / "index.faiss", 384)
    assert len(reopened) == 1999


def test_gpu_ivf_search_matches_cpu():
    from kbqa.retrieval.index import IndexChoice

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 5010, dtype=np.int64)
    cpu, gpu = VectorIndex(384, choice=IndexChoice("ivf")), None
    cpu.add(ids, vectors)
    cpu.fit()
    gpu = VectorIndex(384, use_gpu=True, choice=IndexChoice("ivf"))
    gpu.cpu = cpu.cpu
    assert gpu.kind == "ivf"
    (_, cpu_ids), (_, gpu_ids) = cpu.search(vectors[:20], 5), gpu.search(vectors[:20], 5)
    assert (cpu_ids[:, 0] == gpu_ids[:, 0]).all()


def test_models_run_on_cuda():
    from kbqa.retrieval.device import torch_device
    from kbqa.retrieval.embedder import SentenceTransformerEmbedder

    assert torch_device("auto") == "cuda"
    embedder = SentenceTransformerEmbedder()
    assert embedder.model.device.type == "cuda"
    assert embedder.embed(["hello"]).shape == (1, 384)
