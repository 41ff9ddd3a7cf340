"""The vector index: exact inner product over unit vectors, keyed by chunk id.

The CPU index is the master copy and what is saved; on a GPU a copy is made for searching,
so either machine can open the file. Saving is atomic (temp file, then rename), and a SHA-256
of the file saved beside it (index.faiss.sha256) tells a damaged file from a good one: a file
that fails it, or that faiss cannot read, is rebuilt from the database's embeddings.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

from kbqa import faults
from kbqa.errors import KbqaError, MissingDependencyError
from kbqa.store import Store
from kbqa.store.db import pid_alive

log = logging.getLogger(__name__)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss", "cpu") from None
    return faiss


def gpu_count() -> int:
    faiss = _faiss()
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


class VectorIndex:
    def __init__(self, dim: int, use_gpu: bool = False):
        faiss = _faiss()
        self.dim = dim
        self.cpu = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.use_gpu = use_gpu and gpu_count() > 0
        self._gpu = None
        self._gpu_resources = None

    @classmethod
    def load(cls, path: Path, dim: int, use_gpu: bool = False) -> VectorIndex:
        """Open a saved index; a missing or unreadable file gives an empty one (to repair)."""
        index = cls(dim, use_gpu)
        if path.exists():
            try:
                _verify(path)
                loaded = _faiss().read_index(str(path))
            except (RuntimeError, OSError, ValueError) as exc:
                log.warning("vector index %s is unreadable (%s); rebuilding it", path, exc)
            else:
                if loaded.d == dim:
                    index.cpu = loaded
                else:
                    log.warning("vector index %s has dimension %d, not %d", path, loaded.d, dim)
        return index

    def __len__(self) -> int:
        return int(self.cpu.ntotal)

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self.cpu.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.cpu.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            self._gpu = None

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.cpu.remove_ids(np.asarray(ids, dtype=np.int64))
            self._gpu = None

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n, k); missing neighbours have id -1. With `allowed`
        (chunk ids), only those are searched: a filter before ranking, not after."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if allowed is None:
            return self._searchable().search(vectors, k)
        allowed = np.ascontiguousarray(allowed, dtype=np.int64)
        if not self.use_gpu:
            faiss = _faiss()
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            return self.cpu.search(vectors, k, params=params)
        # GPU indexes take no id selector: score the allowed vectors exactly (the index is flat).
        found = allowed[np.isin(allowed, self.ids())]
        scores = vectors @ self.cpu.reconstruct_batch(found).T if len(found) else None
        out_scores = np.full((len(vectors), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(vectors), k), -1, dtype=np.int64)
        if scores is not None:
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            out_ids[:, : top.shape[1]] = found[top]
            out_scores[:, : top.shape[1]] = np.take_along_axis(scores, top, axis=1)
        return out_scores, out_ids

    def _searchable(self):
        if not self.use_gpu:
            return self.cpu
        if self._gpu is None:
            faiss = _faiss()
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.cpu)
        return self._gpu

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically; KbqaError when it cannot (a full disk), with
        the file before it left as it was."""
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(path)
        # A name of its own: the ingest and a server's repair may save at the same time.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            _faiss().write_index(self.cpu, str(tmp))
            with open(tmp, "rb") as f:
                digest = _sha256(f)
                os.fsync(f.fileno())
            faults.point("index-save")
            os.replace(tmp, path)
            # After the rename: a crash in between leaves the old checksum, and the new file
            # is then rebuilt, never trusted unchecked.
            sidecar = _checksum_path(path)
            sidecar_tmp = sidecar.with_name(f"{tmp.name}.sha256")
            sidecar_tmp.write_text(digest)
            os.replace(sidecar_tmp, sidecar)
        except (OSError, RuntimeError) as exc:
            tmp.unlink(missing_ok=True)
            path.with_name(f"{tmp.name}.sha256").unlink(missing_ok=True)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise KbqaError(
                f"cannot save the vector index {path}: {str(reason).splitlines()[0]}; the "
                f"database is intact and the index is rebuilt from it when next opened"
            ) from exc


def _checksum_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.sha256")


def _sha256(f) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _verify(path: Path) -> None:
    """ValueError when the saved checksum says the file is not the one that was saved."""
    sidecar = _checksum_path(path)
    if not sidecar.exists():
        return  # saved by an older kbqa: faiss's reading and the id check must do
    with open(path, "rb") as f:
        if _sha256(f) != sidecar.read_text().strip():
            raise ValueError("its SHA-256 does not match the one saved with it")


def _remove_orphans(path: Path) -> None:
    """Temporary files left by saves of processes that were killed."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)\.\d+\.tmp(\.sha256)?")
    for old in path.parent.glob(f"{path.name}.*.tmp*"):
        match = pattern.fullmatch(old.name)
        if match and not pid_alive(int(match.group(1))):
            old.unlink(missing_ok=True)


def open_vector_index(store: Store, path: Path, dim: int, use_gpu: bool = False) -> VectorIndex:
    """Load the index and make it agree with the database, from stored embeddings."""
    index = VectorIndex.load(path, dim, use_gpu)
    db_ids, index_ids = store.chunk_ids(), index.ids()
    stale = np.setdiff1d(index_ids, db_ids)
    missing = np.setdiff1d(db_ids, index_ids)
    if len(stale) or len(missing):
        log.warning(
            "vector index out of step with the database (%d stale, %d missing): repairing",
            len(stale),
            len(missing),
        )
        index.remove(stale)
        ids, vectors = store.embeddings(missing)
        index.add(ids, vectors)
        index.save(path)
    return index


def rebuild_vector_index(store: Store, path: Path, dim: int) -> VectorIndex:
    """A new index from every stored embedding (no re-embedding)."""
    index = VectorIndex(dim)
    ids, vectors = store.embeddings()
    index.add(ids, vectors)
    index.save(path)
    return index
