"""Kill an ingest in the middle, then check that nothing is lost, duplicated or out of step."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow

FILES = 150


def make_corpus(root: Path) -> None:
    root.mkdir()
    for i in range(FILES):
        (root / f"page-{i:03}.md").write_text(
            f"# Page {i}\n\n## Setup\n\nService s{i} listens on port {7000 + i}.\n\n"
            f"## Owner\n\nTeam t{i % 7} owns service s{i}; page them in #team-{i % 7}.\n"
        )


def documents_in(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from documents").fetchone()[0]
    except sqlite3.Error:
        return 0


def ingest(home: Path, corpus: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "KBQA_HOME": str(home),
        "KBQA_EMBEDDING_MODEL": "hash",
        "KBQA_EMBED_BATCH_SIZE": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kbqa", "ingest", str(corpus)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def contents(kb: KnowledgeBase) -> list[tuple[str, int, str]]:
    with kb.store.session() as s:
        rows = s.execute(
            select(DocumentRow.uri, ChunkRow.position, ChunkRow.text).join(ChunkRow.document)
        ).all()
    return sorted((Path(u).name, p, t) for u, p, t in rows)


@pytest.mark.slow  # a minute of subprocesses: the fast subset has a shorter cousin
def test_killed_ingest_recovers_without_loss_or_duplicates(tmp_path: Path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    home = tmp_path / "home"
    process = ingest(home, corpus)
    deadline = time.time() + 120
    while documents_in(home / "kbqa.db") < 10 and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the ingest finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < documents_in(home / "kbqa.db") < FILES  # killed part-way

    settings = Settings(home=home)
    # Opening the knowledge base checks the index against the database and repairs it.
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    assert sorted(kb.index.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())
    assert kb.store.last_run().status == "interrupted"

    rerun = ingest(home, corpus)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert b"failed 0" in out

    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    reference = KnowledgeBase(Settings(home=tmp_path / "clean"), embedder=HashEmbedder())
    reference.ingest([corpus])
    assert contents(kb) == contents(reference)  # nothing lost, nothing twice
    assert kb.store.counts() == {"documents": FILES, "chunks": reference.store.counts()["chunks"]}
    assert sorted(kb.index.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())
    # The repaired index finds a chunk by its own stored vector.
    with kb.store.session() as s:
        chunk_id = s.scalars(
            select(ChunkRow.id).join(ChunkRow.document).where(DocumentRow.uri.like("%page-042.md"))
        ).first()
    _, vectors = kb.store.embeddings(np.array([chunk_id]))
    assert kb.index.search(vectors, 1)[1][0, 0] == chunk_id
