"""Ingest on every core: files parsed by several worker processes at once give the same
documents and chunks, in the same order, as one worker; failures and skips are as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.errors import ConfigError
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow


def _corpus(root: Path) -> Path:
    from conftest import make_docs

    make_docs(root)
    for n in range(8):
        (root / f"page{n}.md").write_text(
            f"# Page {n}\n\n## Part A\n\nService {n} listens on port {7000 + n}.\n\n"
            f"## Part B\n\nIts owner is team {n}. " + "More words here. " * (20 * n) + "\n"
        )
    (root / "broken.pdf").write_bytes(b"not a pdf at all")
    return root


def _contents(kb: KnowledgeBase) -> list[tuple]:
    with kb.store.session() as s:
        rows = s.execute(
            select(DocumentRow.id, DocumentRow.uri, DocumentRow.title, ChunkRow.id, ChunkRow.text)
            .join(ChunkRow, ChunkRow.document_id == DocumentRow.id)
            .order_by(ChunkRow.id)
        ).all()
    return [tuple(r) for r in rows]


def _kb(settings: Settings, home: Path, workers: int) -> KnowledgeBase:
    return KnowledgeBase(
        settings.replace(home=home, ingest_workers=workers), embedder=HashEmbedder()
    )


def test_two_workers_give_the_same_documents_and_chunks_as_one(settings, tmp_path: Path):
    docs = _corpus(tmp_path / "docs")
    one, two = _kb(settings, tmp_path / "one", 1), _kb(settings, tmp_path / "two", 2)
    report_one, report_two = one.ingest([docs]), two.ingest([docs])
    assert _contents(one) == _contents(two) and len(_contents(one)) > 10
    assert report_two.added == report_one.added == 11
    assert report_two.failed == report_one.failed
    assert [Path(p).name for p, _ in report_two.failed] == ["broken.pdf"]
    # Changed and unchanged files: only the changed one is parsed and replaced.
    (docs / "page3.md").write_text("# Page 3\n\nService 3 moved to port 9003.\n")
    (docs / "page5.md").unlink()
    again_one, again_two = one.ingest([docs]), two.ingest([docs])
    for again in (again_one, again_two):
        assert (again.updated, again.removed, again.unchanged) == (1, 1, 9)
    assert _contents(one) == _contents(two)


def test_ingest_workers_must_not_be_negative():
    with pytest.raises(ConfigError, match="ingest_workers"):
        Settings(ingest_workers=-1).validate()
