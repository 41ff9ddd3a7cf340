"""Incremental ingest with real databases (SQLite and PostgreSQL) and FAISS, and a hash
embedder for speed."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from kbqa.app import KnowledgeBase
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Every test here runs once on SQLite and once on PostgreSQL."""
    return Settings(home=tmp_path / "home", database_url=database_url, embed_batch_size=4)


def agree(kb: KnowledgeBase) -> bool:
    """The vector index holds exactly the chunks in the database."""
    return sorted(kb.index.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())


def test_first_ingest_adds_every_file(kb: KnowledgeBase, docs: Path):
    report = kb.ingest([docs])
    assert (report.added, report.updated, report.unchanged, report.removed) == (3, 0, 0, 0)
    assert report.failed == []
    assert report.chunks == kb.store.counts()["chunks"] > 3
    assert agree(kb)
    assert kb.settings.index_path.exists()


def test_unchanged_files_are_skipped_without_embedding(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    report = kb.ingest([docs])
    assert (report.added, report.updated, report.unchanged) == (0, 0, 3)
    assert report.chunks == 0 and report.embedded == 0


def test_a_new_parse_version_or_chunk_size_parses_unchanged_files_again(
    kb: KnowledgeBase, docs: Path, monkeypatch: pytest.MonkeyPatch
):
    # A kbqa that parses files differently (or other chunk sizes) must not keep the chunks an
    # older one made of files that did not change: they are parsed again, once.
    from kbqa.ingest import files

    kb.ingest([docs])
    monkeypatch.setattr(files, "PARSE_VERSION", files.PARSE_VERSION + 1)
    report = kb.ingest([docs])
    assert (report.added, report.updated, report.unchanged) == (0, 3, 0)
    assert agree(kb)
    assert kb.ingest([docs]).unchanged == 3
    kb.settings = kb.settings.replace(chunk_max_chars=600, chunk_soft_max_chars=400)
    assert kb.ingest([docs]).updated == 3
    assert kb.ingest([docs]).unchanged == 3
    assert agree(kb)


def test_changed_file_has_its_chunks_replaced(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    before = kb.store.counts()["chunks"]
    (docs / "ports.md").write_text("# Services\n\nThe tracker service now listens on port 9300.\n")
    report = kb.ingest([docs])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    assert kb.store.counts()["chunks"] == before  # one chunk out, one in
    hits = kb.retriever.search("which port does the tracker service listen on", 3)
    texts = " ".join(h.text for h in hits)
    assert "9300" in texts and "7300" not in texts
    assert agree(kb)


def test_deleted_file_is_removed_from_database_and_index(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    (docs / "notes.txt").unlink()
    report = kb.ingest([docs])
    assert report.removed == 1
    with kb.store.session() as s:
        uris = s.scalars(select(DocumentRow.uri)).all()
    assert not any(u.endswith("notes.txt") for u in uris)
    assert all("24 December" not in h.text for h in kb.retriever.search("office closed", 5))
    assert agree(kb)


def test_rename_moves_the_document_and_reuses_stored_embeddings(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    chunks = kb.store.counts()["chunks"]
    (docs / "runbooks" / "db.md").rename(docs / "runbooks" / "database.md")
    report = kb.ingest([docs])
    assert (report.added, report.removed) == (1, 1)
    assert report.embedded == 0  # same text, so the stored vectors were reused
    assert kb.store.counts() == {"documents": 3, "chunks": chunks}
    assert kb.retriever.search("rotate staging password", 1)[0].uri.endswith("database.md")
    assert agree(kb)


def test_broken_file_is_reported_and_the_rest_is_ingested(kb: KnowledgeBase, docs: Path):
    (docs / "broken.pdf").write_bytes(b"garbage, not a pdf")
    (docs / "empty.md").write_text("")
    (docs / "logo.png").write_bytes(b"\x89PNG")
    report = kb.ingest([docs])
    assert report.added == 3
    assert sorted((Path(p).name, why) for p, why in report.failed) == [
        ("broken.pdf", "not a PDF file"),
        ("empty.md", "empty file"),
    ]
    assert [Path(p).name for p in report.unsupported] == ["logo.png"]


def test_a_page_of_markup_is_reported_by_name_and_a_sphinx_page_is_indexed_as_text(
    kb: KnowledgeBase, docs: Path
):
    markup = Path(__file__).parent / "data" / "markup"
    shutil.copy(markup / "escaped.html", docs / "export.html")
    shutil.copy(markup / "sphinx-page.html", docs / "upgrading.html")
    shutil.copy(markup / "sphinx-page.html", docs / "upgrading")  # no extension: sniffed
    report = kb.ingest([docs])
    assert report.added == 5
    assert [(Path(p).name, why.split(":")[0]) for p, why in report.failed] == [
        ("export.html", "mostly markup, not text")
    ]
    with kb.store.session() as s:
        texts = s.scalars(select(ChunkRow.text)).all()
    assert not any("<" in t for t in texts)
    hit = kb.retriever.search("how do I upgrade larkctl with pip", 1)[0]
    assert "pip install --upgrade larkctl" in hit.text


def test_a_file_that_breaks_keeps_its_previous_version(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    (docs / "ports.md").write_text("")
    report = kb.ingest([docs])
    assert report.failed == [(str(docs / "ports.md"), "empty file")]
    assert "7300" in kb.retriever.search("tracker port", 1)[0].text


def test_missing_index_file_is_rebuilt_from_stored_embeddings(settings, docs: Path):
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest([docs])
    settings.index_path.unlink()
    reopened = KnowledgeBase(settings, embedder=HashEmbedder())
    assert len(reopened.index) == reopened.store.counts()["chunks"]
    assert agree(reopened)


def test_stale_index_is_repaired_on_open(settings, docs: Path):
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest([docs])
    stale = kb.index
    stale.add(np.array([999_999]), np.ones((1, 256), dtype=np.float32) / 16)
    stale.remove(stale.ids()[:1])
    stale.save(settings.index_path)
    reopened = KnowledgeBase(settings, embedder=HashEmbedder())
    assert agree(reopened)
    assert 999_999 not in reopened.index.ids()


def test_chunk_ids_are_never_reused(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    first = set(kb.store.chunk_ids().tolist())
    shutil.rmtree(docs / "runbooks")
    kb.ingest([docs])
    (docs / "extra.md").write_text("# Extra\n\nA brand new page about the deploy freeze.\n")
    kb.ingest([docs])
    with kb.store.session() as s:
        newest = s.scalar(select(func.max(ChunkRow.id)))
    assert newest > max(first)


def test_reindex_rebuilds_the_same_index_without_the_embedder(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    before = kb.retriever.search("backups nightly", 2)
    size = kb.reindex()
    assert size == kb.store.counts()["chunks"]
    after = KnowledgeBase(kb.settings, embedder=HashEmbedder()).retriever.search(
        "backups nightly", 2
    )
    assert [h.chunk_id for h in after] == [h.chunk_id for h in before]


def test_switching_embedding_model_is_refused(kb: KnowledgeBase, docs: Path):
    from kbqa.errors import KbqaError

    kb.ingest([docs])
    other = KnowledgeBase(kb.settings, embedder=HashEmbedder(dim=128))
    with pytest.raises(KbqaError, match="embedded with 'hash-256'"):
        other.ingest([docs])


def test_an_unchanged_file_costs_no_database_query_of_its_own(kb: KnowledgeBase, tmp_path: Path):
    from sqlalchemy import event

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(30):
        (folder / f"note{n}.md").write_text(f"# Note {n}\n\nNote {n} says {n * 7}.\n")
    kb.ingest([folder])
    statements: list[str] = []
    record = lambda conn, cursor, sql, *rest: statements.append(sql)  # noqa: E731
    event.listen(kb.store.engine, "before_cursor_execute", record)
    try:
        report = kb.ingest([folder])
    finally:
        event.remove(kb.store.engine, "before_cursor_execute", record)
    assert (report.added, report.updated, report.unchanged) == (0, 0, 30)
    # The source's fingerprints in one query, not one per file.
    assert sum("FROM documents" in sql for sql in statements) < 5
