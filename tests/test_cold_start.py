"""A cold in-process `kbqa ask --extractive` loads only what it uses: no torch stack on the
ONNX embedder's path, and the vector index memory-mapped."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kbqa.app import KnowledgeBase
from kbqa.errors import MissingDependencyError
from kbqa.retrieval import device
from kbqa.retrieval.embedder import make_embedder, packaged_onnx_path
from kbqa.retrieval.index import VectorIndex
from kbqa.settings import Settings

TORCH_STACK = ("torch", "sentence_transformers", "transformers")

# A cold `kbqa ask --extractive`, in a process of its own (the ingest before it ran elsewhere).
SCRIPT = """
import json, sys
from pathlib import Path
from kbqa.app import KnowledgeBase
from kbqa.settings import Settings

kb = KnowledgeBase(Settings.load(home=Path(sys.argv[1])))
answer = kb.ask("when do the larkdb backups run nightly?", extractive=True)
print(json.dumps({{"loaded": [m for m in {stack} if m in sys.modules],
                  "embedder": kb.embedder.name, "answer": answer.text,
                  "read_only": kb.snapshot.index.read_only}}))
"""


@pytest.mark.skipif(
    packaged_onnx_path() is None or importlib.util.find_spec("onnxruntime") is None,
    reason="needs the ONNX embedder: pip install 'kbqa[onnx]'",
)
@pytest.mark.skipif(
    any(os.path.exists(p) for p in device.GPU_DRIVER_FILES),
    reason="a GPU machine: device 'auto' asks torch whether CUDA works",
)
def test_an_extractive_ask_on_the_onnx_path_imports_no_torch(docs: Path, tmp_path: Path):
    # (The ingest itself may load torch where it is installed: unstructured imports spaCy,
    # whose thinc imports torch when it finds it.)
    KnowledgeBase(Settings.load(home=tmp_path / "home")).ingest([docs])
    script = SCRIPT.format(stack=TORCH_STACK)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["embedder"].startswith("all-MiniLM-L6-v2@onnx")
    assert "02:00 UTC" in shown["answer"]
    assert shown["loaded"] == []
    assert shown["read_only"] is True  # the snapshot's flat index is memory-mapped


def test_a_torch_backend_without_the_torch_stack_is_one_line_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.split(".")[0] in TORCH_STACK else real(name, *a),
    )
    with pytest.raises(MissingDependencyError) as caught:
        make_embedder("all-MiniLM-L6-v2", "cpu", backend="torch-fp32")
    assert str(caught.value) == "sentence-transformers is not installed: pip install 'kbqa[torch]'"
    from kbqa.assistant.generator import TransformersGenerator

    with pytest.raises(MissingDependencyError, match=r"kbqa\[torch\]"):
        TransformersGenerator("some-model", Path("models"))


def test_a_memory_mapped_index_searches_alike_and_refuses_changes(tmp_path: Path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(8)
    index.add(np.arange(1, 51), vectors)
    index.save(tmp_path / "index.faiss")
    mapped = VectorIndex.load(tmp_path / "index.faiss", 8, mmap=True)
    loaded = VectorIndex.load(tmp_path / "index.faiss", 8)
    assert mapped.read_only and not loaded.read_only
    for a, b in zip(mapped.search(vectors[:3], 5), loaded.search(vectors[:3], 5), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(RuntimeError, match="read-only"):
        mapped.add(np.array([99]), vectors[:1])
    with pytest.raises(RuntimeError, match="read-only"):
        mapped.remove(np.array([1]))
    assert len(mapped.ids()) == 50
