"""The vector index: inner product over unit vectors, keyed by chunk id.

Chosen by size, as txtai does: exact ("flat") below `flat_max` vectors, then IVF (inverted
lists over k-means cells trained on the stored vectors) with its parameters in the file. An IVF
index is retrained when the corpus grows or shrinks past the range it was trained for (see
`IndexChoice`); the check runs on save, so an ingest pays for it once. Both kinds remove by id
and search with an id selector (`search(vectors, k, allowed=ids)`), which filters before
ranking. HNSW is not offered: faiss's HNSW cannot remove vectors.

The CPU index is the master copy and what is saved; on a GPU a copy is made for searching,
so either machine can open the file. Saving is atomic (temp file, then rename), and a SHA-256
of the file saved beside it (index.faiss.sha256) tells a damaged file from a good one: a file
that fails it, or that faiss cannot read, is rebuilt from the database's embeddings.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kbqa import faults
from kbqa.errors import ConfigError, KbqaError, MissingDependencyError
from kbqa.store import Store
from kbqa.store.db import pid_alive

log = logging.getLogger(__name__)

KINDS = ("auto", "flat", "ivf")
_SELECTORS_KEPT = 8


def _faiss():
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss", "cpu") from None
    return faiss


def gpu_count() -> int:
    faiss = _faiss()
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


@dataclass(frozen=True)
class IndexChoice:
    """Which index a number of vectors gets (settings `vector_index`, `vector_index_flat_max`).

    IVF has nlist = 4 * sqrt(n) cells (txtai's rule; at most n / 39, so k-means has 39 points
    a cell) and searches `probe_share` of them, at most `max_probe`: recall@10 against exact
    search on MiniLM vectors here (benchmarks/index_scale.py) was 0.948 with txtai's 1/16 and
    0.983 with 1/8 (159 cells) at 100k; at 1M 125 of 4000 cells already gave 0.986.
    An IVF index trained on n vectors serves from n / 4 to 4 n, then is retrained."""

    kind: str = "auto"
    flat_max: int = 50000
    probe_share: float = 1 / 8
    min_probe: int = 8
    max_probe: int = 160
    # k-means on 40 sampled points a cell, 10 rounds: at 1M vectors faiss's defaults (256 a
    # cell, 25 rounds) cost ~16x more for little recall.
    train_per_cell: int = 40
    train_rounds: int = 10

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"setting 'vector_index' must be one of {', '.join(KINDS)}")

    def kind_for(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n <= self.flat_max else "ivf"

    def nlist_for(self, n: int) -> int:
        return max(1, min(round(4 * math.sqrt(n)), n // 39))

    def nprobe_for(self, nlist: int) -> int:
        share = min(self.max_probe, math.ceil(nlist * self.probe_share))
        return min(nlist, max(self.min_probe, share))

    def fits(self, index, n: int) -> bool:
        """Whether a faiss index of this kind still suits n vectors."""
        if self.kind_for(n) == "flat":
            return not _is_ivf(index)
        if not _is_ivf(index):
            return False
        # The size it was trained for, inverting nlist_for (and its cap of n / 39).
        trained_for = max((index.nlist / 4) ** 2, 39 * index.nlist)
        return index.nlist == self.nlist_for(n) or trained_for / 4 <= n <= trained_for * 4


def _is_ivf(index) -> bool:
    return hasattr(index, "nlist")


class VectorIndex:
    def __init__(self, dim: int, use_gpu: bool = False, choice: IndexChoice | None = None):
        faiss = _faiss()
        self.dim = dim
        self.choice = choice or IndexChoice()
        self.cpu = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.use_gpu = use_gpu and gpu_count() > 0
        self._gpu = None
        self._gpu_resources = None
        # The id selectors of the last few allowed-id arrays (one per audience, as the
        # snapshot caches them), each kept with its array: a rebuilt selector over 500k ids
        # cost more than the search itself (benchmarks/index_scale.py, filtered rows).
        self._selectors: OrderedDict[int, tuple[np.ndarray, object, np.ndarray]] = OrderedDict()
        self._selectors_lock = threading.Lock()
        # Memory-mapped (load(mmap=True)): faiss would write into the mapped file's pages and
        # crash, so a change is refused instead.
        self.read_only = False

    @classmethod
    def load(
        cls,
        path: Path,
        dim: int,
        use_gpu: bool = False,
        choice: IndexChoice | None = None,
        mmap: bool = False,
    ) -> VectorIndex:
        """Open a saved index; a missing or unreadable file gives an empty one (to repair).
        `mmap`: a flat index's vectors stay in the file, paged in as searches read them (a
        start reads none of them, processes share them); such an index is read-only."""
        index = cls(dim, use_gpu, choice)
        if path.exists():
            try:
                _verify(path)
                loaded = _read(path, mmap)
                index.read_only = mmap and not _is_ivf(loaded)
            except (RuntimeError, OSError, ValueError) as exc:
                log.warning("vector index %s is unreadable (%s); rebuilding it", path, exc)
            else:
                if loaded.d == dim:
                    index.cpu = loaded
                else:
                    log.warning("vector index %s has dimension %d, not %d", path, loaded.d, dim)
        return index

    @property
    def kind(self) -> str:
        return "ivf" if _is_ivf(self.cpu) else "flat"

    def describe(self) -> dict:
        """The index's kind and parameters, as saved in its file."""
        out = {"kind": self.kind, "vectors": len(self)}
        if _is_ivf(self.cpu):
            out.update(nlist=int(self.cpu.nlist), nprobe=int(self.cpu.nprobe))
        return out

    def __len__(self) -> int:
        return int(self.cpu.ntotal)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        if not _is_ivf(self.cpu):
            return faiss.vector_to_array(self.cpu.id_map).astype(np.int64)
        lists = self.cpu.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(self.cpu.nlist)
            if lists.list_size(i)
        ]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything indexed."""
        ids = self.ids()
        if not len(ids):
            return ids, np.zeros((0, self.dim), dtype=np.float32)
        return ids, self.cpu.reconstruct_batch(ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._writable()
        if len(ids):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            self.cpu.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            self._gpu = None

    def remove(self, ids: np.ndarray) -> None:
        self._writable()
        if len(ids):
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            # IVF's id hash table removes only by an explicit array of ids.
            self.cpu.remove_ids(_faiss().IDSelectorArray(ids) if _is_ivf(self.cpu) else ids)
            self._gpu = None

    def _writable(self) -> None:
        if self.read_only:
            raise RuntimeError("a memory-mapped vector index is read-only: load it with mmap=False")

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n, k); missing neighbours have id -1. With `allowed`, only
        those chunk ids are ranked (filtered before ranking, not after)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if allowed is None:
            return self._searchable().search(vectors, k)
        faiss = _faiss()
        selector = self._selector(allowed)
        if _is_ivf(self.cpu):
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.cpu.nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
        # Selectors run on the CPU copy: faiss's GPU indexes do not all take them.
        return self.cpu.search(vectors, k, params=params)

    def _selector(self, allowed: np.ndarray):
        """A faiss bitmap selector of `allowed` (chunk ids are small dense integers, so one bit
        each), reused while the same array is searched again."""
        with self._selectors_lock:
            cached = self._selectors.get(id(allowed))
            if cached is not None and cached[0] is allowed:
                self._selectors.move_to_end(id(allowed))
                return cached[1]
        ids = np.asarray(allowed, dtype=np.int64)
        mask = np.zeros(int(ids.max()) + 1 if len(ids) else 1, dtype=bool)
        mask[ids] = True
        bits = np.packbits(mask, bitorder="little")
        faiss = _faiss()
        selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        with self._selectors_lock:
            # The array and the bits stay referenced while the selector is cached: the id of a
            # freed array may be reused, and faiss reads the bits by pointer.
            self._selectors[id(allowed)] = (allowed, selector, bits)
            while len(self._selectors) > _SELECTORS_KEPT:
                self._selectors.popitem(last=False)
        return selector

    def _searchable(self):
        if not self.use_gpu:
            return self.cpu
        if self._gpu is None:
            faiss = _faiss()
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.cpu)
        return self._gpu

    def fit(self) -> bool:
        """Rebuild as the kind and size this many vectors should have; True if it did."""
        n = len(self)
        if self.choice.fits(self.cpu, n):
            return False
        ids, vectors = self.vectors()
        self.cpu = build_faiss_index(self.dim, vectors, self.choice)
        self.add(ids, vectors)
        log.info("vector index rebuilt for %d vectors: %s", n, self.describe())
        return True

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (refitted to its size first); KbqaError when
        it cannot (a full disk), with the file before it left as it was."""
        self.fit()
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


def _read(path: Path, mmap: bool):
    faiss = _faiss()
    if mmap:
        try:
            # IndexFlatCodes (the flat kind) map their vectors; IVF here reads as usual.
            return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError:
            pass
    return faiss.read_index(str(path))


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


def build_faiss_index(dim: int, vectors: np.ndarray, choice: IndexChoice):
    """An empty faiss index of the kind `choice` gives len(vectors), trained on them for IVF."""
    faiss = _faiss()
    n = len(vectors)
    if choice.kind_for(n) == "flat" or n == 0:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    nlist = choice.nlist_for(n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 1234  # builds repeat
    index.cp.niter = choice.train_rounds
    sample = choice.train_per_cell * nlist
    if n > sample:
        rows = np.random.default_rng(1234).choice(n, sample, replace=False)
        vectors = vectors[np.sort(rows)]
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))
    index.nprobe = choice.nprobe_for(nlist)
    # Chunk ids are not 0..n-1: a hash table maps them to the vectors, so reconstruct and
    # remove work by chunk id.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def make_vector_index(
    kind: str, dim: int, use_gpu: bool = False, flat_max: int = 50000
) -> VectorIndex:
    """An empty index for the settings string `vector_index` ("auto", "flat" or "ivf")."""
    return VectorIndex(dim, use_gpu, IndexChoice(kind, flat_max))


def open_vector_index(
    store: Store, path: Path, dim: int, use_gpu: bool = False, choice: IndexChoice | None = None
) -> VectorIndex:
    """Load the index and make it agree with the database, from stored embeddings."""
    index = VectorIndex.load(path, dim, use_gpu, choice)
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


def rebuild_vector_index(
    store: Store, path: Path, dim: int, choice: IndexChoice | None = None
) -> VectorIndex:
    """A new index from every stored embedding (no re-embedding), of the kind `choice` gives."""
    index = VectorIndex(dim, choice=choice)
    ids, vectors = store.embeddings()
    index.cpu = build_faiss_index(dim, vectors, index.choice)
    index.add(ids, vectors)
    index.save(path)
    return index
