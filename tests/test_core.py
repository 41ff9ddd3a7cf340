"""The core under concurrency: questions from many threads while ingests run here or in another
process, snapshots swapped atomically, and BM25 loaded from disk on start."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.retrieval.lexical import LexicalIndex
from kbqa.retrieval.snapshot import generation
from kbqa.types import Answer


def make_pages(root: Path, start: int, count: int, word: str = "service") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        (root / f"page-{i:03}.md").write_text(
            f"# Page {i}\n\n## Setup\n\nThe {word} s{i} listens on port {7000 + i}.\n\n"
            f"## Owner\n\nTeam t{i % 7} owns the {word} s{i}; page them in #team-{i % 7}.\n"
        )
    return root


def ask_in_threads(kb: KnowledgeBase, questions: list[str], stop: threading.Event, threads=4):
    """Ask from several threads until `stop` is set; returns (answers, errors)."""
    answers: list[Answer] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        i = n
        while not stop.is_set():
            try:
                answers.append(kb.ask(questions[i % len(questions)], extractive=i % 2 == 0))
            except BaseException as exc:  # every failure counts
                errors.append(exc)
            i += 1

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    return pool, answers, errors


@pytest.mark.slow  # a minute of subprocesses: the fast subset has a shorter cousin
def test_questions_from_many_threads_during_an_ingest_in_another_process_never_fail(
    settings, docs: Path, tmp_path: Path
):
    settings = settings.replace(snapshot_check_seconds=0.1)
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    kb.ingest([docs])
    pages = make_pages(tmp_path / "pages", 0, 36, word="gateway")
    env = {
        **os.environ,
        "KBQA_HOME": str(settings.home),
        "KBQA_EMBEDDING_MODEL": "hash",
        "KBQA_EMBED_BATCH_SIZE": "2",  # many small commits: many changes to follow
    }
    stop = threading.Event()
    pool, answers, errors = ask_in_threads(
        kb, ["which port does the tracker service listen on?", "when do backups run?"], stop
    )
    ingest = subprocess.run(
        [sys.executable, "-m", "kbqa", "ingest", str(pages)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    time.sleep(0.5)
    stop.set()
    for t in pool:
        t.join(timeout=60)
    assert ingest.returncode == 0, ingest.stderr
    assert errors == [], errors[:3]
    assert len(answers) > 20
    # The other process's pages are found without a restart, within seconds.
    deadline = time.monotonic() + 10
    while kb.snapshot.generation != generation(kb.store) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kb.snapshot.generation == generation(kb.store)
    hits = kb.ask("gateway s33 port", extractive=True).hits
    assert any("7033" in h.text for h in hits)
    assert kb.snapshots.builds >= 2


def test_questions_from_many_threads_during_ingests_in_this_process_never_fail(
    kb: KnowledgeBase, docs: Path, tmp_path: Path
):
    kb.ingest([docs])
    pages = tmp_path / "pages"
    stop = threading.Event()
    pool, answers, errors = ask_in_threads(kb, ["tracker port?", "backups nightly"], stop, 6)
    for round_ in range(4):  # add, change and delete files while questions run
        make_pages(pages, round_ * 5, 5, word=f"svc{round_}")
        if round_:
            (pages / f"page-{(round_ - 1) * 5:03}.md").unlink()
        kb.ingest([pages])
    stop.set()
    for t in pool:
        t.join(timeout=60)
    assert errors == [], errors[:3]
    assert answers
    hits = kb.ask("svc3 s17 port", extractive=True).hits
    assert any("7017" in h.text for h in hits)
    assert all("page-000.md" not in h.uri for h in kb.retriever.search("svc0 s0 port", 10))


def test_a_question_keeps_the_snapshot_it_started_with(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    pinned = kb.retriever.pinned()
    before = pinned.search("which port does the tracker service listen on?", 1)[0]
    (docs / "ports.md").unlink()
    kb.ingest([docs])
    # The old snapshot still answers (and can read its hits' vectors); the new one has moved on.
    again = pinned.search("which port does the tracker service listen on?", 1)[0]
    assert again.chunk_id == before.chunk_id and "7300" in again.text
    assert pinned.vectors([again]).shape == (1, 256)
    now = kb.retriever.search("which port does the tracker service listen on?", 3)
    assert all("7300" not in h.text for h in now)
    assert pinned.snapshot is not kb.snapshot


def test_another_process_ingest_is_seen_without_a_restart(settings, docs: Path, tmp_path: Path):
    settings = settings.replace(snapshot_check_seconds=0.05)
    reader = KnowledgeBase(settings, embedder=HashEmbedder())
    writer = KnowledgeBase(settings, embedder=HashEmbedder())  # as another process would
    writer.ingest([docs])
    assert "7300" in reader.retriever.search("tracker port", 1)[0].text
    first = reader.snapshot
    (docs / "extra.md").write_text("# Extra\n\nThe zeppelin hangar opens at 06:15.\n")
    writer.ingest([docs])
    deadline = time.monotonic() + 5
    while reader.snapshot is first and time.monotonic() < deadline:
        time.sleep(0.02)
    assert reader.snapshot is not first
    assert "06:15" in reader.retriever.search("zeppelin hangar", 1)[0].text


def test_a_server_idle_during_another_process_ingest_has_the_new_snapshot_before_it_is_asked(
    settings, docs: Path
):
    settings = settings.replace(snapshot_check_seconds=0.05)
    server = KnowledgeBase(settings, embedder=HashEmbedder())
    writer = KnowledgeBase(settings, embedder=HashEmbedder())  # as another process would
    writer.ingest([docs])
    assert server.warm_up()
    first = server.snapshots.peek()
    stop = server.follow_ingests()
    try:
        (docs / "extra.md").write_text("# Extra\n\nThe zeppelin hangar opens at 06:15.\n")
        writer.ingest([docs])
        deadline = time.monotonic() + 5
        while server.snapshots.peek() is first and time.monotonic() < deadline:
            time.sleep(0.02)  # nobody asks: peek() neither checks nor builds
        assert server.snapshots.peek() is not first
        # The first question after the ingest is answered from the new snapshot.
        assert "06:15" in server.retriever.search("zeppelin hangar", 1)[0].text
    finally:
        stop()


def test_bm25_is_loaded_from_disk_on_start_not_rebuilt(
    settings, docs: Path, monkeypatch: pytest.MonkeyPatch
):
    KnowledgeBase(settings, embedder=HashEmbedder()).ingest([docs])
    assert (settings.home / "bm25" / "current.json").exists()
    built = []
    original = LexicalIndex.from_texts.__func__
    monkeypatch.setattr(
        LexicalIndex,
        "from_texts",
        classmethod(lambda cls, *a, **k: built.append(1) or original(cls, *a, **k)),
    )
    reopened = KnowledgeBase(settings, embedder=HashEmbedder())
    reopened.retriever.mode = "bm25"
    assert "7300" in reopened.retriever.search("tracker port", 1)[0].text
    assert built == []  # loaded, not rebuilt
    # A saved index for other chunks (or none) is not used: it is rebuilt.
    for path in (settings.home / "bm25").iterdir():
        if path.is_dir():
            (path / "ids.npy").write_bytes(b"garbage")
    again = KnowledgeBase(settings, embedder=HashEmbedder())
    again.retriever.mode = "bm25"
    assert "7300" in again.retriever.search("tracker port", 1)[0].text
    assert built == [1]


def test_ask_stream_yields_sentences_then_the_answer(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    items = list(kb.ask_stream("when do the larkdb backups run nightly?"))
    assert isinstance(items[-1], Answer) and all(isinstance(i, str) for i in items[:-1])
    assert " ".join(items[:-1]) == items[-1].text and "[1]" in items[-1].text


def test_new_settings_rebuild_only_what_a_changed_setting_was_read_for(kb, docs: Path):
    kb.ingest([docs])
    store, retriever, embedder, snapshot = kb.store, kb.retriever, kb.embedder, kb.snapshot
    # A setting read per question (the answerer's): everything built is kept.
    kb.settings = kb.settings.replace(top_k=2, min_hit_score=0.2)
    assert (kb.store, kb.retriever, kb.embedder, kb.snapshot) == (
        store,
        retriever,
        embedder,
        snapshot,
    )
    assert len(kb.ask("Which port does the tracker service listen on?", extractive=True).hits) <= 2
    # One the retriever and the snapshots were built from: they are built again, with it; the
    # embedder given to the constructor is kept.
    kb.settings = kb.settings.replace(snapshot_check_seconds=0.05, fusion_alpha=0.5)
    assert kb.snapshots.check_seconds == 0.05 and kb.retriever is not retriever
    assert kb.retriever.alpha == 0.5 and kb.embedder is embedder
    assert kb.store is not store and kb.store.counts() == store.counts()
    assert "7300" in kb.ask("Which port does the tracker service listen on?").text


def test_settings_cannot_be_changed_in_place(kb):
    with pytest.raises(AttributeError):
        kb.settings.top_k = 1  # frozen: a change is a new Settings (replace), given to the core


def test_warm_up_loads_nothing_for_an_empty_knowledge_base(kb, docs: Path):
    assert kb.warm_up() is False and kb.snapshots.peek() is None
    kb.ingest([docs])
    kb.snapshots._current = None  # as a fresh process would find it
    assert kb.warm_up() is True and len(kb.snapshots.peek()) == kb.store.counts()["chunks"]


def test_the_vector_backend_is_picked_by_its_settings_name(kb, docs: Path):
    from kbqa.retrieval.backends import FaissBackend, make_vector_backend

    kb.ingest([docs])
    backend = make_vector_backend(kb.store, kb.settings)
    assert type(backend) is FaissBackend
    rebuilt = backend.rebuilt(kb.embedder.dim)
    assert sorted(rebuilt.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())
    assert backend.describe(None, kb.embedder.dim)["index_vectors"] == len(rebuilt)


def test_every_setting_a_service_is_built_from_is_listed_as_read():
    # One missing from services.READS would leave that service stale after `kb.settings = …`.
    import re
    from dataclasses import fields

    from kbqa import models, services
    from kbqa.retrieval import backends
    from kbqa.settings import Settings

    derived = {"db_url": {"database_url", "home"}, "index_path": {"home"}, "models_dir": {"home"}}
    names = {f.name for f in fields(Settings)}
    for module in (services, backends, models):
        read = set(re.findall(r"\b(?:s|settings)\.([a-z_]+)", Path(module.__file__).read_text()))
        assert read, module.__name__
        for name in read:
            needed = derived.get(name, {name} & names)
            assert needed <= services.READS, f"{module.__name__} reads {name}"
