"""How an ingest run is recorded: ok, failed with its error, interrupted; and which runs another
process may mark interrupted."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kbqa.app import KnowledgeBase
from kbqa.errors import KbqaError
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings
from kbqa.store import Store

SRC = Path(__file__).resolve().parents[1] / "src"


class BrokenEmbedder(HashEmbedder):
    def __init__(self, error: BaseException):
        super().__init__()
        self.error = error

    def embed(self, texts):
        raise self.error


def test_a_successful_ingest_is_recorded_ok(kb: KnowledgeBase, docs: Path):
    kb.ingest([docs])
    run = kb.store.last_run()
    assert (run.status, run.error) == ("ok", None)
    assert run.finished_at is not None and run.stats["added"] == 3


def test_a_failed_ingest_is_recorded_failed_with_its_error(settings: Settings, docs: Path):
    kb = KnowledgeBase(settings, embedder=BrokenEmbedder(RuntimeError("the model fell over")))
    with pytest.raises(RuntimeError):
        kb.ingest([docs])
    run = kb.store.last_run()
    assert run.status == "failed"
    assert run.error == "RuntimeError: the model fell over"
    assert kb.runs(1)[0]["error"] == "RuntimeError: the model fell over"
    assert kb.status()["last_run"]["status"] == "failed"


def test_ctrl_c_is_recorded_interrupted(settings: Settings, docs: Path):
    kb = KnowledgeBase(settings, embedder=BrokenEmbedder(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        kb.ingest([docs])
    assert kb.store.last_run().status == "interrupted"


RUNNING = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from kbqa.app import KnowledgeBase
    from kbqa.retrieval.embedder import HashEmbedder
    from kbqa.settings import Settings

    def progress(done, total, name):
        print("ingesting", flush=True)
        time.sleep(600)  # until killed

    kb = KnowledgeBase(Settings(home=Path(sys.argv[1])), embedder=HashEmbedder())
    kb.ingest([Path(sys.argv[2])], progress)
    """
)


def test_a_running_ingest_of_another_process_is_left_running_until_that_process_dies(
    settings: Settings, docs: Path
):
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    other = subprocess.Popen(
        [sys.executable, "-c", RUNNING, str(settings.home), str(docs)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "ingesting"
        # This process opening the database must not close the other's live run.
        store = Store(settings.db_url)
        assert store.last_run().status == "running"
        assert store.last_run().owner["pid"] == other.pid
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    run = Store(settings.db_url).last_run()
    assert run.status == "interrupted"
    assert run.error == "the process running it was gone"


def test_a_run_recorded_by_another_machine_is_left_alone(settings: Settings, kb, docs):
    kb.ingest([docs])
    with sqlite3.connect(settings.home / "kbqa.db") as conn:
        conn.execute(
            """update runs set status = 'running', owner = '{"host": "elsewhere", "pid": 1}'"""
        )
    assert Store(settings.db_url).last_run().status == "running"


def test_a_database_of_an_older_kbqa_gains_the_new_columns(tmp_path: Path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "create table runs (id integer primary key, started_at datetime, finished_at "
            "datetime, status varchar(16), roots json, stats json)"
        )
        conn.execute("insert into runs (status, roots, stats) values ('running', '[]', '{}')")
    run = Store(f"sqlite:///{db}").last_run()
    assert run.status == "interrupted"  # no owner recorded: its process is long gone


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # hold the write lock until told to let go
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    """
)


@pytest.mark.parametrize("when", ["before the ingest", "during the ingest"])
def test_a_database_locked_by_another_writer_is_a_clear_error_and_loses_nothing(
    tmp_path: Path, docs: Path, when: str
):
    settings = Settings(home=tmp_path / "home", database_busy_seconds=0.5)
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest([docs])
    (docs / "new.md").write_text("# New page\n\nThe new page says hello.\n")
    before = kb.store.counts()
    lockers = []

    def lock(*_args) -> None:
        if lockers:
            return
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(settings.home / "kbqa.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        lockers.append(locker)
        assert locker.stdout.readline().strip() == "locked"

    try:
        if when == "before the ingest":
            lock()
        with pytest.raises(KbqaError, match=r"locked by another writer .* run the ingest again"):
            # "during": the run is recorded, then the lock is taken before the first commit.
            KnowledgeBase(settings, embedder=HashEmbedder()).ingest([docs], progress=lock)
    finally:
        for locker in lockers:
            locker.communicate("\n", timeout=30)
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    assert kb.store.counts() == before
    assert sorted(kb.index.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())
    report = kb.ingest([docs])
    assert report.added == 1 and kb.store.last_run().status == "ok"
