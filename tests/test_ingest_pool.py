"""Ingest on every core: files parsed by several worker processes at once give the same
documents and chunks, in the same order, as one worker; failures and skips are as before."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.errors import ConfigError, ParseError
from kbqa.ingest import worker as parse_worker
from kbqa.ingest.files import FileLimits
from kbqa.ingest.partition import load_parsers
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


class _Watched(HashEmbedder):
    """The hash embedder, noting the threads it embeds on and how many embed at once."""

    def __init__(self):
        super().__init__()
        self.threads: list[str] = []
        self.at_once = self.most = 0
        self._lock = threading.Lock()

    def embed(self, texts):
        with self._lock:
            self.threads.append(threading.current_thread().name)
            self.at_once += 1
            self.most = max(self.most, self.at_once)
        time.sleep(0.05)  # long enough for the other thread's embedding to overlap
        try:
            return super().embed(texts)
        finally:
            with self._lock:
                self.at_once -= 1


def test_two_workers_embed_ahead_on_their_threads_with_the_vectors_of_one(settings, tmp_path: Path):
    docs = _corpus(tmp_path / "docs")
    one = _kb(settings, tmp_path / "one", 1)
    watched = _Watched()
    two = KnowledgeBase(settings.replace(home=tmp_path / "two", ingest_workers=2), embedder=watched)
    one.ingest([docs])
    report = two.ingest([docs])
    assert _contents(one) == _contents(two)
    ids_one, vectors_one = one.store.embeddings()
    ids_two, vectors_two = two.store.embeddings()
    assert (ids_one == ids_two).all() and (vectors_one == vectors_two).all()
    # Every chunk was embedded ahead, beside the parses, two at once; none on the write path.
    assert watched.threads and all(t.startswith("kbqa-parse") for t in watched.threads)
    assert watched.most == 2
    assert report.embedded == len(ids_two)
    # Unchanged chunks of a changed file keep their stored vectors; only new text is embedded.
    (docs / "page3.md").write_text(
        (docs / "page3.md").read_text().replace("port 7003", "port 9003")
    )
    watched.threads.clear()
    again = two.ingest([docs])
    assert again.updated == 1 and again.embedded == 1


def test_no_worker_is_used_by_two_threads_at_once(settings, tmp_path: Path, monkeypatch):
    """The hang: several sources, the first ones a file each. A parse thread started the idle,
    never-started second worker for the second file while the ingest thread started it too for
    the folder; the thread sent its request on one process's pipe and read the other's. Starts
    are slowed here (as under load, or from a fork server) so that the overlap always happens
    where the design allows it."""
    users: dict[int, set[int]] = {}
    shared: list[str] = []
    lock = threading.Lock()

    def watched(method):
        def wrapper(self, *args):
            me = threading.get_ident()
            with lock:
                inside = users.setdefault(id(self), set())
                if inside - {me}:
                    shared.append(f"{method.__name__} while another thread used the worker")
                nested = me in inside
                inside.add(me)
            try:
                if method.__name__ == "_start":
                    time.sleep(0.2)
                return method(self, *args)
            finally:
                if not nested:
                    with lock:
                        inside.discard(me)

        return wrapper

    for name in ("_start", "parse", "close"):
        monkeypatch.setattr(
            parse_worker.ParseWorker, name, watched(getattr(parse_worker.ParseWorker, name))
        )
    docs = tmp_path / "docs"
    docs.mkdir()
    singles = []
    for n in range(3):
        singles.append(docs / f"single{n}.md")
        singles[-1].write_text(f"# Single {n}\n\nService {n} listens on port {8000 + n}.\n")
    folder = _corpus(tmp_path / "folder")
    two = _kb(settings, tmp_path / "two", 2)
    done: list = []
    # A daemon thread: on the old code this ingest never returned.
    runner = threading.Thread(
        target=lambda: done.append(two.ingest([*singles, folder])), daemon=True
    )
    runner.start()
    for _ in range(600):
        runner.join(0.1)
        if done or shared:
            break
    assert shared == []
    assert done, "the ingest with two workers hung"
    one = _kb(settings, tmp_path / "one", 1)
    report = one.ingest([*singles, folder])
    assert (done[0].added, done[0].failed) == (report.added, report.failed)
    assert report.added == 14
    assert _contents(one) == _contents(two)


def test_a_forked_worker_keeps_no_other_workers_pipe_open(monkeypatch):
    """A worker forked after another closes its copy of the ingest's end of that one's pipe:
    held, the first worker would not see its pipe end while the second lives."""
    monkeypatch.setattr(
        parse_worker, "_context", lambda: parse_worker.multiprocessing.get_context("fork")
    )
    with parse_worker.ParsePool(FileLimits(), size=2) as pool:
        pool.start(2)
        first, second = pool._workers
        assert first._process.pid != second._process.pid and second._process.is_alive()
        first._conn.close()  # as if the ingest had gone, for this worker
        first._process.join(10)
        assert first._process.exitcode == 0


class _Finalised:
    """Garbage that records which process finalises it (as an onnxruntime session's destructor
    would run, and hang, in a forked worker)."""

    def __init__(self, marker: Path):
        self.marker, self.parent, self.me = marker, os.getpid(), self

    def __del__(self):
        if os.getpid() != self.parent:
            self.marker.write_text("finalised in a worker")


def test_a_forked_worker_never_finalises_what_the_ingest_left(monkeypatch, tmp_path: Path):
    """Objects the ingest process left unreachable when it forked a worker (an earlier
    knowledge base's embedder) are not collected in the worker: there an onnxruntime session's
    destructor waited forever for threads the fork did not copy."""
    monkeypatch.setattr(
        parse_worker, "_context", lambda: parse_worker.multiprocessing.get_context("fork")
    )

    def collect_in_worker(*_args, **_kwargs):
        gc.collect()
        raise ParseError("collected")

    monkeypatch.setattr(parse_worker, "parse_file", collect_in_worker)
    marker, page = tmp_path / "marker", tmp_path / "page.md"
    page.write_text("# Page\n\nWords.\n")
    load_parsers()  # (their first load collects garbage) before the worker is forked
    gc.disable()  # the cycle must still be there when the worker is forked
    try:
        _Finalised(marker)  # unreachable at once: a cycle only a collection frees
        with parse_worker.ParsePool(FileLimits(), size=1) as pool:
            pool.start(1)
            gc.enable()
            with pytest.raises(ParseError, match="collected"):
                pool.parse(page, "digest", {})
    finally:
        gc.enable()
    gc.collect()
    assert not marker.exists()


def test_a_second_ingest_in_one_process_still_forks_its_workers(settings, tmp_path: Path):
    """Nothing an ingest runs leaves a thread behind (bm25s's tqdm started a monitor thread
    that lived on): a later ingest in the process forks its workers from itself, warm,
    instead of starting a fork server and paying the parsers' imports again."""
    docs = _corpus(tmp_path / "docs")
    kb = _kb(settings, tmp_path / "home", 2)
    before = set(threading.enumerate())  # pytest-xdist runs a thread of its own
    kb.ingest([docs])
    assert set(threading.enumerate()) == before


def test_warming_the_pdf_parser_loads_its_reading_order_sort():
    """A PDF ahead is warmed once in the ingest process before its workers fork: the
    compiled reading-order sort (numba) is loaded there, not in every worker's first PDF."""
    pytest.importorskip("pikepdf")
    from unstructured.partition.utils import xycut

    from kbqa.ingest.partition import warm_pdf

    warm_pdf()
    assert xycut.projection_by_bboxes.signatures


def test_an_ingests_time_includes_starting_its_workers(settings, tmp_path: Path, monkeypatch):
    """The time an ingest reports (the CLI's "… in N s") is what its caller waited, the
    workers' start and the parsers' loading included, not only the run after them."""
    docs = _corpus(tmp_path / "docs")
    start = parse_worker.ParsePool.start

    def slow_start(self, n, pdf=False):
        time.sleep(1.0)  # as the parsers' first loading in a fresh process takes seconds
        start(self, n, pdf)

    monkeypatch.setattr(parse_worker.ParsePool, "start", slow_start)
    report = _kb(settings, tmp_path / "home", 2).ingest([docs])
    assert report.added == 11 and report.seconds >= 1.0


def test_ingest_workers_must_not_be_negative():
    with pytest.raises(ConfigError, match="ingest_workers"):
        Settings(ingest_workers=-1).validate()
