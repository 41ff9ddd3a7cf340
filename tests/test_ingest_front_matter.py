"""A Markdown file's front matter is not text: its `title:` names the document, its
`updated:` and `author:` date it, and none of it is chunked, indexed or quoted."""

from pathlib import Path

import pytest
from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.ingest.connectors.base import titled
from kbqa.ingest.markdown_blocks import read, split_front_matter
from kbqa.store import ChunkRow, DocumentRow

ONCALL = (
    "---\nupdated: 2026-11-30\n---\n"
    "# On-call handbook\n## Paging\n\nPage the secondary after 15 minutes without an ack.\n"
)
VPN = (
    "---\ntitle: VPN guide\nupdated: 2025-01-15\nauthor: Dana\n---\n\n"
    "Connect with the corporate client and sign in with SSO.\n\n"
    "## Troubleshooting\n\nRestart the client when the tunnel drops.\n"
)


@pytest.fixture
def ingested(kb: KnowledgeBase, docs: Path) -> KnowledgeBase:
    (docs / "oncall.md").write_text(ONCALL)
    (docs / "vpn.md").write_text(VPN)
    kb.ingest([docs])
    return kb


def _stored(kb: KnowledgeBase, name: str) -> tuple[DocumentRow, list[tuple[str, str]]]:
    with kb.store.session() as s:
        doc = s.scalars(select(DocumentRow).where(DocumentRow.uri.like(f"%/{name}"))).one()
        chunks = s.execute(
            select(ChunkRow.heading, ChunkRow.text)
            .where(ChunkRow.document_id == doc.id)
            .order_by(ChunkRow.position)
        ).all()
        s.expunge(doc)
    return doc, [tuple(c) for c in chunks]


def test_front_matter_is_neither_the_title_nor_a_chunk(ingested: KnowledgeBase):
    doc, chunks = _stored(ingested, "oncall.md")
    assert doc.title == "On-call handbook"
    text = "Paging\n\nPage the secondary after 15 minutes without an ack."
    assert chunks == [("On-call handbook › Paging", text)]
    assert doc.source_updated_at.isoformat().startswith("2026-11-30")


def test_a_front_matter_title_names_the_document(ingested: KnowledgeBase):
    doc, chunks = _stored(ingested, "vpn.md")
    assert doc.title == "VPN guide" and doc.author == "Dana"
    assert doc.source_updated_at.isoformat().startswith("2025-01-15")
    assert not any("updated:" in text or "author:" in text for _, text in chunks), chunks
    assert chunks[0][1] == "Connect with the corporate client and sign in with SSO."


def test_answers_cite_the_title_and_quote_no_front_matter(ingested: KnowledgeBase):
    answer = ingested.ask("when do I page the secondary?", extractive=True)
    labels = [c.hit.label for c in answer.citations]
    assert "On-call handbook › Paging" in labels, labels
    answer = ingested.ask("how do I connect to the VPN with SSO?", extractive=True)
    assert answer.citations and answer.citations[0].hit.label.startswith("VPN guide")
    assert "updated:" not in answer.text and "author:" not in answer.text


@pytest.mark.parametrize(
    "text",
    [
        "---\ntitle: A\n...\nBody\n",  # YAML's document end closes it too
        "\ufeff---\r\ntitle: A\r\ntags:\r\n  - x\r\n- y\r\n# a comment\r\n---\r\nBody\r\n",
    ],
)
def test_front_matter_is_split_off(text: str):
    front, body = split_front_matter(text)
    assert front.startswith("title: A") and body.strip() == "Body"


@pytest.mark.parametrize(
    "text",
    [
        "---\nNot front matter, a setext heading\n---\nBody\n",
        "---\n\n---\nBody\n",
        "Body\n---\ntitle: A\n---\n",
        "---\ntitle: A\nBody without a close\n",
    ],
)
def test_a_rule_or_heading_is_not_front_matter(text: str):
    assert split_front_matter(text) == ("", text)


def test_the_blocks_read_back_leave_front_matter_out(tmp_path: Path):
    path = tmp_path / "vpn.md"
    path.write_text(VPN)
    assert read(path)[0][1] == "Connect with the corporate client and sign in with SSO."


def test_a_connector_heads_the_body_after_its_front_matter():
    assert titled("---\nupdated: 2025-01-15\n---\nBody\n", "page.md") == (
        "---\nupdated: 2025-01-15\n---\n# page.md\n\nBody\n"
    )
    headed = "---\nupdated: 2025-01-15\n---\n# Page\n\nBody\n"
    assert titled(headed, "page.md") == headed
