"""Shared by every connector's tests: a knowledge base with the fast fakes that counts its parse
and embed calls, a helper that syncs a connector into it (the real `kbqa sync` path, cursor
and all), and helpers that ask it as an audience and read what it holds.

    def test_first_sync(ckb, my_server):
        result = sync(ckb, build(config_for(my_server)))
        assert result.error == "" and uris(ckb) == {...}
        answer = ask(ckb, "how do we rotate keys?", audience=token_audience("confluence-space:ENG"))
        assert seen_uris(answer) <= {...}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.ingest.connect import SyncResult, sync_one
from kbqa.ingest.connectors.base import Access, Connector, Content, ItemError, Listing, RemoteItem
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.http import RetryPolicy
from kbqa.ingest.files import parse_file
from kbqa.retrieval.access import Audience
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.store import ChunkRow, ConnectorCursorRow, DocumentRow
from kbqa.types import Answer

PUBLIC = Access(public=True)
# Retries that do not wait: a rate-limited sync in a test "finishes late" in milliseconds.
FAST_RETRY = RetryPolicy(attempts=6, backoff=0.001, max_backoff=0.002, max_wait=0.05)


class CountingEmbedder(HashEmbedder):
    """The hash embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        return super().embed(texts)


class CountingParser:
    """The in-process file parser, counting its calls (an unchanged item must cost none)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path, digest: str, timings: dict[str, float]):
        self.calls += 1
        return parse_file(path, 1200, 800, digest, timings)


@pytest.fixture
def ckb(tmp_path: Path) -> KnowledgeBase:
    """A knowledge base with the fast fakes; `ckb.embedder.texts` and `ckb.parser.calls`
    count the embedding and parsing done."""
    settings = Settings(
        home=tmp_path / "home",
        embed_batch_size=4,
        min_hit_score=0.1,
        min_confidence=0.0,
        answer_style="free",
    )
    kb = KnowledgeBase(settings, embedder=CountingEmbedder(), generator=EchoGenerator())
    kb.parser = CountingParser()
    return kb


def sync(kb: KnowledgeBase, connector: Connector, config: SourceConfig | None = None) -> SyncResult:
    """Sync `connector` into `kb` as `kbqa sync NAME` does (the stored cursor, then the new
    one stored once the items are)."""
    config = config or SourceConfig(name=connector.name, kind=connector.kind, url="")
    parser = getattr(kb, "parser", None)
    return sync_one(config, kb.settings, kb.store, kb.index_sources, None, connector, parser)


def uris(kb: KnowledgeBase) -> set[str]:
    """Every stored document's uri."""
    with kb.store.session() as s:
        return set(s.scalars(select(DocumentRow.uri)))


def documents(kb: KnowledgeBase) -> dict[str, dict]:
    """uri -> {"title", "content_hash", "metadata", "text"} of every stored document."""
    out = {}
    with kb.store.session() as s:
        for doc in s.scalars(select(DocumentRow)):
            chunks = s.scalars(
                select(ChunkRow.text).where(ChunkRow.document_id == doc.id).order_by(ChunkRow.id)
            )
            out[doc.uri] = {
                "title": doc.title,
                "content_hash": doc.content_hash,
                "metadata": dict(doc.meta or {}),
                "text": "\n".join(chunks),
            }
    return out


def cursor(kb: KnowledgeBase, name: str) -> str | None:
    """The cursor stored for source `name`."""
    with kb.store.session() as s:
        row = s.get(ConnectorCursorRow, name)
        return row.cursor if row else None


def token_audience(*principals: str, name: str = "probe") -> Audience:
    """An API token's audience holding these connector principals."""
    return Audience.for_token(name, (), principals)


def channel_audience(channel_id: str = "C0PUBLIC", name: str = "general") -> Audience:
    """A public Slack channel's audience (its principals come from slack_channel_principals)."""
    return Audience(channel_id=channel_id, channel_name=name)


def ask(kb: KnowledgeBase, question: str, audience: Audience | None = None, k: int = 8) -> Answer:
    """The extractive answer (no generator) as `audience` would get it."""
    return kb.ask(question, k=k, extractive=True, audience=audience)


def seen_uris(answer: Answer) -> set[str]:
    """Every document an answer shows: its citations and its closest sources."""
    return {c.hit.uri for c in answer.citations} | {h.uri for h in answer.hits}


def visible(kb: KnowledgeBase, audience: Audience | None) -> set[str]:
    """The uris of the documents `audience` may see (the admin listing's filter)."""
    _, rows = kb.documents(limit=10_000, audience=audience)
    return {row["uri"] for row in rows}


class FakeConnector:
    """A connector over a dict of items held in memory, for the base's own tests: `items`
    (id -> (RemoteItem, markdown)), `fail` (ids whose fetch raises ItemError), `complete`."""

    kind = "fake"

    def __init__(self, name: str = "fake", items: Iterable[tuple[RemoteItem, str]] = ()):
        self.name = name
        self.items = {r.id: (r, text) for r, text in items}
        self.fail: set[str] = set()
        self.complete = True
        self.fetched: list[str] = []
        self.cursors: list[str | None] = []

    def list(self, cursor: str | None) -> Listing:
        self.cursors.append(cursor)
        items = [r for r, _ in self.items.values()]
        return Listing(items, complete=self.complete, cursor=f"c{len(self.cursors)}")

    def fetch(self, item: RemoteItem) -> Content:
        self.fetched.append(item.id)
        if item.id in self.fail:
            raise ItemError(f"{item.id} cannot be read (HTTP 500)")
        return Content(markdown=self.items[item.id][1])

    def put(self, item_id: str, text: str, version: str = "1", access: Access = PUBLIC):
        self.items[item_id] = (
            RemoteItem(
                id=item_id,
                version=version,
                title=f"Page {item_id}",
                url=f"https://fake.example/{item_id}",
                updated_at="2026-11-30T10:00:00Z",
                author="ada",
                access=access,
            ),
            text,
        )
