"""Faults: an ingest killed at each fault point, a full disk during the index save, a damaged
index file. After each, the knowledge base re-opens whole and a re-run equals a clean ingest.
benchmarks/faults.py is the long version (50 random kills)."""

import random
import resource
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from kbqa import faults
from kbqa.app import KnowledgeBase
from kbqa.errors import ConfigError, KbqaError
from kbqa.ingest.pipeline import Indexer
from kbqa.retrieval.index import open_vector_index
from kbqa.settings import Settings

sys.path.insert(0, str(ROOT / "benchmarks"))
import faults as bench


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    bench.make_corpus(root, random.Random(3), 8)
    return root


def test_fault_at_is_checked():
    with pytest.raises(ConfigError, match="fault_at"):
        Settings().replace(fault_at="nowhere:1")
    with pytest.raises(ConfigError, match="fault_at"):
        Settings.load(environ={"KBQA_FAULT_AT": "parse:0"})
    assert Settings.load(environ={"KBQA_FAULT_AT": "index-save:2"}).fault_at == "index-save:2"


def kill_and_recover(tmp_path: Path, corpus: Path, stages: list[str]) -> None:
    """Per stage: change the corpus, kill an ingest at that stage (the middle occurrence, as
    a traced run counts them), re-open, re-run, compare with a clean ingest."""
    home = tmp_path / "home"
    KnowledgeBase(bench.settings_for(home)).ingest([corpus])
    rng = random.Random(5)
    for stage in stages:
        ingested = sorted(corpus.glob("*.md"))[0]
        bench.mutate(corpus, rng)
        ingested.unlink(missing_ok=True)  # always something to remove
        (corpus / f"new-{stage}.md").write_text(bench.page(rng, "new page"))
        counts = bench.trace(home, corpus, tmp_path / "scratch")
        assert counts.get(stage), (stage, counts)
        spec = f"{stage}:{(counts[stage] + 1) // 2}"
        assert bench.kill_at(home, corpus, spec) == -signal.SIGKILL, spec
        kb = KnowledgeBase(bench.settings_for(home))
        assert bench.check(kb) == [], spec  # whole before any re-run
        # BM25 is saved after the run is recorded: a cache of the database, rebuilt if lost.
        expected = "ok" if stage.startswith("bm25") else "interrupted"
        assert kb.store.last_run().status == expected, spec
        kb.ingest([corpus])
        reference = KnowledgeBase(bench.settings_for(tmp_path / f"clean-{stage}"))
        reference.ingest([corpus])
        assert bench.check(kb, reference) == [], spec
        for engine in (kb.store.engine, reference.store.engine):
            engine.dispose()
    # Killed saves leave temporary files; the next save removes those of dead processes.
    assert not [p.name for p in home.iterdir() if ".tmp" in p.name]
    assert not [p.name for p in (home / "bm25").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_an_ingest_killed_mid_commit_loses_nothing(tmp_path, corpus):
    kill_and_recover(tmp_path, corpus, ["commit"])


@pytest.mark.slow
def test_an_ingest_killed_at_each_fault_point_loses_nothing(tmp_path: Path, corpus: Path):
    kill_and_recover(tmp_path, corpus, list(faults.POINTS))


@pytest.mark.slow
def test_a_cli_ingest_killed_at_a_fault_point_is_marked_interrupted(tmp_path, corpus):
    home = tmp_path / "home"
    assert bench.kill_at(home, corpus, "commit:2", cli=True) == -signal.SIGKILL
    kb = KnowledgeBase(bench.settings_for(home))
    assert bench.check(kb) == []
    assert 0 < kb.store.counts()["documents"] < 8
    assert kb.store.last_run().status == "interrupted"


@contextmanager
def disk_full(folder: Path, keep: Path):
    """Writes under `folder` (holding a copy of `keep`) fail for lack of space: a full tmpfs
    mounted there when this process may mount one (root), else a file-size limit (EFBIG
    instead of ENOSPC)."""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
    )
    shutil.copy(keep, folder / keep.name)
    if mounted.returncode == 0:
        try:
            filler = folder / "filler"
            with open(filler, "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                        f.flush()
                except OSError:
                    pass
            yield "tmpfs"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        yield "RLIMIT_FSIZE"
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


class FillsTheDisk:
    """The real vector index, with the disk full while it saves; records what was left."""

    def __init__(self, index, folder: Path):
        self.index, self.folder, self.how, self.left = index, folder, None, None

    def add(self, ids, vectors):
        self.index.add(ids, vectors)

    def remove(self, ids):
        self.index.remove(ids)

    def save(self, path: Path) -> None:
        # The index is saved in a folder of its own here, so the full disk hits the save alone.
        with disk_full(self.folder, keep=path) as self.how:
            target = self.folder / path.name
            before = target.read_bytes()
            try:
                self.index.save(target)
            finally:
                files = sorted(p.name for p in self.folder.iterdir() if p.name != "filler")
                self.left = (target.read_bytes() == before, files)


def test_a_full_disk_during_the_index_save_is_a_clear_error_and_loses_nothing(
    tmp_path: Path, corpus: Path
):
    home = tmp_path / "home"
    settings = bench.settings_for(home)
    kb = KnowledgeBase(settings)
    kb.ingest([corpus])
    (corpus / "extra.md").write_text("# Extra\n\nAn extra page about the vault token.\n")
    folder = tmp_path / "index-disk"
    folder.mkdir()
    index = open_vector_index(kb.store, settings.index_path, 256)
    sink = FillsTheDisk(index, folder)
    with pytest.raises(KbqaError, match=r"cannot save the vector index .*database is intact"):
        Indexer(kb.store, kb.embedder, sink, settings).ingest([bench_source(corpus, settings)])
    assert sink.how in ("tmpfs", "RLIMIT_FSIZE")
    run = kb.store.last_run()
    assert run.status == "failed" and "cannot save the vector index" in run.error
    # The old file whole, no temporary file left.
    assert sink.left == (True, ["index.faiss"])
    # The database kept the new document; the index file lags and is repaired on open.
    kb = KnowledgeBase(settings)
    assert bench.check(kb) == []
    assert kb.ingest([corpus]).unchanged == 9


def bench_source(corpus: Path, settings: Settings):
    from kbqa.ingest.sources import file_source

    return file_source(corpus, settings.chunk_max_chars, settings.chunk_soft_max_chars)


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "emptied"])
def test_a_damaged_index_file_is_rebuilt_from_the_database(
    tmp_path: Path, corpus: Path, damage: str
):
    home = tmp_path / "home"
    settings = bench.settings_for(home)
    KnowledgeBase(settings).ingest([corpus])
    data = bytearray(settings.index_path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "bit-flipped":
        # In the vectors, where faiss reads the file without complaint.
        for offset in range(len(data) // 3, len(data) // 2, 97):
            data[offset] ^= 0x10
    else:
        data = bytearray()
    settings.index_path.write_bytes(bytes(data))
    kb = KnowledgeBase(settings)
    assert bench.check(kb) == []
    ids, vectors = kb.store.embeddings()
    np.testing.assert_array_equal(kb.index.cpu.reconstruct_batch(ids), vectors)


def test_a_damaged_bm25_file_is_rebuilt(tmp_path: Path, corpus: Path):
    home = tmp_path / "home"
    settings = bench.settings_for(home)
    kb = KnowledgeBase(settings)
    kb.ingest([corpus])
    expected = kb.snapshot.lexical.search("vault token rotate", 5)
    saved = next(p for p in (home / "bm25").iterdir() if p.is_dir())
    victim = max(
        (p for p in saved.iterdir() if p.name != "kbqa.json"), key=lambda p: p.stat().st_size
    )
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    kb = KnowledgeBase(settings)
    assert bench.check(kb) == []
    found = kb.snapshot.lexical.search("vault token rotate", 5)
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_allclose(found[1], expected[1])
