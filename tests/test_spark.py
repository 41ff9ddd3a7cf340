"""`kbqa ingest --spark local[2]`: the Spark job's result equals the local ingest's."""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow

SLACK = ROOT / "examples" / "slack-export"


def _why_no_spark() -> str:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install 'kbqa[spark]'"
    if shutil.which("java") is None:
        return "no Java for Spark: apt-get install openjdk-17-jre-headless"
    return ""


needs_spark = pytest.mark.skipif(bool(_why_no_spark()), reason=_why_no_spark() or "-")


def _kb(home: Path, model: str, **more) -> KnowledgeBase:
    # The default backend, onnx-qint8: Spark batches texts differently from a local ingest, and
    # qint8 embeds one text at a time so that a text's vector does not depend on its batch.
    settings = Settings(
        home=home,
        embedding_model=model,
        embedding_backend="onnx-qint8",
        slack_workspace="larkspur",
        device="cpu",
        **more,
    )
    return KnowledgeBase(settings, generator=EchoGenerator())


def _contents(kb: KnowledgeBase) -> dict:
    """uri -> (title, content hash, metadata, [(position, heading, text, text hash, vector)])."""
    with kb.store.session() as s:
        docs = {d.id: d for d in s.scalars(select(DocumentRow))}
        out = {d.uri: (d.title, d.content_hash, d.meta, []) for d in docs.values()}
        for c in s.scalars(select(ChunkRow).order_by(ChunkRow.document_id, ChunkRow.position)):
            out[docs[c.document_id].uri][3].append(
                (c.position, c.heading, c.text, c.text_hash, np.frombuffer(c.embedding, np.float32))
            )
    return out


def _assert_same(a: dict, b: dict, atol: float) -> None:
    assert sorted(a) == sorted(b)
    for uri in a:
        title, digest, meta, chunks = a[uri]
        assert (title, digest, meta) == b[uri][:3], uri
        assert [c[:4] for c in chunks] == [c[:4] for c in b[uri][3]], uri
        for mine, theirs in zip(chunks, b[uri][3], strict=True):
            np.testing.assert_allclose(mine[4], theirs[4], atol=atol)


@pytest.mark.slow
@needs_spark
def test_spark_ingest_equals_the_local_ingest(tmp_path):
    """The packaged MiniLM on both sides: vectors agree to float noise (other batches)."""
    model = "all-MiniLM-L6-v2"
    handbook = shutil.copytree(ROOT / "examples" / "handbook", tmp_path / "handbook")
    local, spark = _kb(tmp_path / "local", model), _kb(tmp_path / "spark", model)
    want = local.ingest([handbook, SLACK])
    got = spark.ingest([handbook, SLACK], spark="local[2]")
    for field in ("added", "updated", "unchanged", "removed", "chunks", "embedded"):
        assert getattr(got, field) == getattr(want, field), field
    assert got.failed == want.failed and any("broken.pdf" in p for p, _ in got.failed)
    assert got.unsupported == want.unsupported
    assert got.written_elsewhere == 0  # SQLite: the driver writes
    _assert_same(_contents(spark), _contents(local), atol=1e-4)

    # Incremental as the local ingest: nothing to do, then one edit and one deletion.
    again = spark.ingest([handbook, SLACK], spark="local[2]")
    assert (again.added, again.updated, again.embedded) == (0, 0, 0)
    assert again.unchanged == want.added
    pto = handbook / "policies" / "pto.html"
    pto.write_text(pto.read_text().replace("Time Off", "Time Off and Holidays"))
    (handbook / "company.md").unlink()
    edited = spark.ingest([handbook, SLACK], spark="local[2]")
    local_edited = local.ingest([handbook, SLACK])
    assert (edited.updated, edited.removed) == (1, 1)
    assert (edited.updated, edited.removed, edited.embedded) == (
        local_edited.updated,
        local_edited.removed,
        local_edited.embedded,
    )
    _assert_same(_contents(spark), _contents(local), atol=1e-4)
    # The serving side sees the new vectors.
    hits = spark.retriever.search("time off and holidays", 3)
    assert any(h.uri.endswith("pto.html") for h in hits)


@pytest.mark.slow
@needs_spark
def test_spark_ingest_into_pgvector_is_served_by_another_replica(tmp_path, pg_url):
    """The team setup: a Spark ingest writes to the shared PostgreSQL (pgvector), and a second
    kbqa on the same database answers from it; the stored rows equal a local SQLite ingest."""
    model = "all-MiniLM-L6-v2"
    handbook = ROOT / "examples" / "handbook"
    shared = {"database_url": pg_url, "vector_backend": "pgvector"}
    spark = _kb(tmp_path / "spark", model, **shared)
    got = spark.ingest([handbook], spark="local[2]")
    local = _kb(tmp_path / "local", model)
    want = local.ingest([handbook])
    assert (got.added, got.chunks, got.failed) == (want.added, want.chunks, want.failed)
    assert got.written_elsewhere == got.added  # PostgreSQL: the executors wrote every one
    _assert_same(_contents(spark), _contents(local), atol=1e-4)
    replica = _kb(tmp_path / "replica", model, **shared)
    hits = replica.retriever.search("which port does route-planner listen on?", 3)
    assert any(h.uri.endswith("architecture/overview.md") for h in hits), [h.uri for h in hits]
    assert spark.ingest([handbook], spark="local[2]").embedded == 0  # incremental there too


def test_executor_failures_reach_the_report_as_the_local_ingest_words_them(tmp_path):
    """Without Spark: a task's outcome, turned back into an item, fails as the local one."""
    from kbqa.errors import ParseError
    from kbqa.ingest.sources import file_source
    from kbqa.ingest.spark import _loaded_item
    from kbqa.ingest.spark_tasks import _task

    (tmp_path / "empty.md").write_text("")
    (tmp_path / "fake.pdf").write_text("not a pdf at all")
    source = file_source(tmp_path, 1200, 800)
    for item in source.items:
        with pytest.raises(ParseError) as local:
            item.load(item.fingerprint(), {})
        row = {"uri": item.uri, "path": item.uri, "document": b""}
        result = _task(row, {}, 1200, 800)
        result["timings"] = json.dumps(result["timings"])
        rebuilt = _loaded_item(item, result)
        assert rebuilt.fingerprint() == item.fingerprint()
        with pytest.raises(ParseError) as remote:
            rebuilt.load(rebuilt.fingerprint(), {})
        assert str(remote.value) == str(local.value)
    # The settings' size limits apply on the executor, in the local ingest's words.
    from kbqa.ingest.files import FileLimits

    big = tmp_path / "big.md"
    big.write_text("# Big\n\n" + "word " * 400)
    small = FileLimits(max_file_bytes=1000)
    with pytest.raises(ParseError) as local:
        file_source(big, 1200, 800, small).items[0].load("x", {})
    remote = _task({"uri": str(big), "path": str(big), "document": b""}, {}, 1200, 800, small)
    assert remote["status"] == "failed" and remote["error"] == str(local.value)
    assert "max_file_bytes" in remote["error"]
    # An unchanged file is not parsed on the executor.
    item = source.items[0]
    row = {"uri": item.uri, "path": item.uri, "document": b""}
    assert _task(row, {item.uri: item.fingerprint()}, 1200, 800)["status"] == "unchanged"


def test_an_executor_parses_within_the_time_limit_and_goes_on(tmp_path):
    """Without Spark: a file that parses too long costs an executor max_file_seconds, as it
    costs the local ingest, and the next file is parsed by a fresh worker."""
    from kbqa.ingest.files import FileLimits
    from kbqa.ingest.spark_tasks import _task

    slow = tmp_path / "slow.md"
    slow.write_text("lorem " * (512 * 1024))  # one long line: unstructured takes tens of seconds
    good = tmp_path / "good.md"
    good.write_text("# Good\n\nA good page.\n")
    limits = FileLimits(max_file_seconds=2.0)

    def run(path):
        return _task({"uri": str(path), "path": str(path), "document": b""}, {}, 1200, 800, limits)

    assert run(good)["status"] == "loaded"  # the worker is up: the limit is the parse's alone
    started = time.perf_counter()
    remote = run(slow)
    assert remote["status"] == "failed"
    assert remote["error"] == "took longer than max_file_seconds (2 s): skipped"
    assert time.perf_counter() - started < 5
    assert run(good)["status"] == "loaded"


def test_precomputed_embedder_looks_vectors_up_and_embeds_what_is_missing():
    from kbqa.ingest.pipeline import PrecomputedEmbedder, text_hash
    from kbqa.retrieval.embedder import HashEmbedder

    local = HashEmbedder()
    known = {text_hash("alpha"): np.full(local.dim, 0.5, dtype=np.float32)}
    embedder = PrecomputedEmbedder(known, local)
    out = embedder.embed(["alpha", "beta gamma"])
    assert (out[0] == 0.5).all()
    np.testing.assert_array_equal(out[1], local.embed(["beta gamma"])[0])
    assert embedder.embedded_here == 1 and embedder.name == local.name


def _executors_here(rows_seen: list, attempts: int = 1):
    """run_spark with the executors' code run in this process (no JVM), batches of 3 files;
    with attempts 2 every task runs twice, as Spark retries a task (the last one counts)."""
    import time

    from kbqa.ingest.spark import Job

    def run(master, sources, store, local_embedder, factory, max_chars, soft_max_chars,
            partitions=0, source_ids=None, target=None, limits=None):  # fmt: skip
        job = Job(sources, store, factory, max_chars, soft_max_chars, source_ids, target, limits)
        for _ in range(attempts):
            rows = job.run_here(batch_size=3)
        rows_seen.extend(rows)
        return job.result(rows, local_embedder, time.perf_counter())

    return run


@pytest.mark.slow
def test_executors_that_write_leave_the_rows_a_local_ingest_does(tmp_path, monkeypatch, caplog):
    """spark_writes = "executors": each batch of files is written where it was parsed, and the
    driver only follows the chunk ids it is told; rows, report, incrementality and search
    equal a local ingest's, and no document or vector travels back to the driver."""
    import pickle

    import kbqa.ingest.spark as spark_module

    rows: list = []
    monkeypatch.setattr(spark_module, "run_spark", _executors_here(rows))
    handbook = shutil.copytree(ROOT / "examples" / "handbook", tmp_path / "handbook")
    local = _kb(tmp_path / "local", "hash")
    remote = _kb(tmp_path / "remote", "hash", spark_writes="executors")
    want = local.ingest([handbook, SLACK])
    got = remote.ingest([handbook, SLACK], spark="local[2]")
    fields = ("added", "updated", "unchanged", "removed", "chunks", "embedded")
    assert got.failed == want.failed and any("broken.pdf" in p for p, _ in got.failed)
    assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields]
    _assert_same(_contents(remote), _contents(local), atol=0)
    assert sum(1 for r in rows if r["written"]) == got.written_elsewhere == want.added > 0
    assert not any(r["document"] for r in rows)
    assert all(pickle.loads(r["vectors"]) == {} for r in rows if r["vectors"])
    assert got.stages["store"] > 0

    def top(kb, question):
        return [h.uri for h in kb.retriever.search(question, 5)]

    question = "which port does route-planner listen on?"
    assert top(remote, question) == top(local, question)

    rows.clear()
    again = remote.ingest([handbook, SLACK], spark="local[2]")
    assert (again.added, again.updated, again.embedded, again.unchanged) == (0, 0, 0, want.added)
    assert not any(r["written"] for r in rows)

    pto = handbook / "policies" / "pto.html"
    pto.write_text(pto.read_text().replace("Time Off", "Time Off and Holidays"))
    (handbook / "company.md").unlink()
    edited = remote.ingest([handbook, SLACK], spark="local[2]")
    local_edited = local.ingest([handbook, SLACK])
    assert [getattr(edited, f) for f in fields] == [getattr(local_edited, f) for f in fields]
    assert (edited.updated, edited.removed) == (1, 1)
    _assert_same(_contents(remote), _contents(local), atol=0)
    # The index dropped the replaced chunks and holds the new ones, without a repair.
    with remote.store.session() as s:
        stored = sorted(s.scalars(select(ChunkRow.id)).all())
    assert sorted(remote.retriever.snapshot.index.ids().tolist()) == stored
    with caplog.at_level("WARNING"):
        fresh = _kb(tmp_path / "remote", "hash")
        assert sorted(fresh.retriever.snapshot.index.ids().tolist()) == stored
    assert "out of step" not in caplog.text
    for question in ("time off and holidays", "which port does route-planner listen on?"):
        assert top(fresh, question) == top(local, question)


@pytest.mark.slow
def test_a_retried_executor_task_replaces_its_first_attempt(tmp_path, monkeypatch, caplog):
    """Spark reruns a failed task: the first attempt had committed, the second replaces its
    rows; the result still equals a local ingest, counted as added, and the index agrees."""
    import kbqa.ingest.spark as spark_module

    rows: list = []
    monkeypatch.setattr(spark_module, "run_spark", _executors_here(rows, attempts=2))
    handbook = ROOT / "examples" / "handbook"
    local = _kb(tmp_path / "local", "hash")
    remote = _kb(tmp_path / "remote", "hash", spark_writes="executors")
    want = local.ingest([handbook])
    got = remote.ingest([handbook], spark="local[2]")
    assert (got.added, got.updated, got.chunks) == (want.added, 0, want.chunks)
    _assert_same(_contents(remote), _contents(local), atol=0)
    with remote.store.session() as s:
        stored = sorted(s.scalars(select(ChunkRow.id)).all())
    with caplog.at_level("WARNING"):
        fresh = _kb(tmp_path / "remote", "hash")
        assert sorted(fresh.retriever.snapshot.index.ids().tolist()) == stored
    assert "out of step" not in caplog.text


def test_an_executor_embeds_a_text_whose_stored_vector_went_missing(tmp_path):
    """The driver saw a chunk text as embedded, but its row was gone by the time the executor
    wrote (another ingest): the executor embeds it rather than writing a chunk without one."""
    import time

    from kbqa.ingest.sources import file_source
    from kbqa.ingest.spark import Job, WriteTarget
    from kbqa.retrieval.embedder import HashEmbedder

    local = _kb(tmp_path / "local", "hash")
    local.ingest([ROOT / "examples" / "handbook" / "policies"])
    remote = _kb(tmp_path / "remote", "hash")
    embedder = HashEmbedder()
    sources = [file_source(ROOT / "examples" / "handbook" / "policies", 1200, 800)]
    from kbqa.store import SourceRow

    with remote.store.session() as s:
        row = SourceRow(root=sources[0].root, kind=sources[0].kind)
        s.add(row)
        s.commit()
    target = WriteTarget(remote.settings.db_url, 5.0, embedder.name, embedder.dim)
    job = Job(sources, remote.store, HashEmbedder, 1200, 800, [row.id], target)
    with local.store.session() as s:
        job.known_texts = set(s.scalars(select(ChunkRow.text_hash)))  # all "embedded"
    rows = job.run_here()
    result = job.result(rows, embedder, time.perf_counter())
    assert result.embedded == 0 and len(result.written) == len(_contents(local))
    _assert_same(_contents(remote), _contents(local), atol=0)


def test_a_failed_spark_task_is_told_in_one_line_with_secrets_masked():
    """What a Spark job raises holds the Python traceback inside a Java one; the user gets the
    Python error alone, with the database password masked (seen with executors that could not
    reach PostgreSQL)."""
    from kbqa.ingest.spark import task_error

    message = (
        "An exception was thrown from the Python worker. Please see the stack trace below.\n"
        "Traceback (most recent call last):\n"
        '  File "/x/kbqa/store/db.py", line 46, in __init__\n'
        "psycopg.OperationalError: connection failed\n"
        "\nThe above exception was the direct cause of the following exception:\n\n"
        '    raise ConfigError(f"database_url: cannot open {url!r}: {exc}") from exc\n'
        "kbqa.errors.ConfigError: database_url: cannot open "
        "'postgresql+psycopg://kbqa:s3cret@db:5432/kbqa': connection refused\n"
        "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(Runner.scala:1)\n"
    )
    line = task_error(message)
    assert line.startswith("ConfigError: database_url: cannot open")
    assert "s3cret" not in line and "kbqa:***@db" in line and "\n" not in line
