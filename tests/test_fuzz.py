"""Hostile files: every bad input reported by name with a reason, every good file indexed, each
file within the per-file limits. benchmarks/fuzz_ingest.py is the long version (1,000 inputs)."""

import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import HANDBOOK, ROOT
from kbqa.app import KnowledgeBase
from kbqa.errors import ParseError
from kbqa.ingest.files import FileLimits, discover_all, parse_file
from kbqa.ingest.worker import ParseWorker
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_ingest as bench  # benchmarks/fuzz_ingest.py

MB = 1024 * 1024


@pytest.mark.slow
def test_a_short_fuzz_run_reports_every_bad_input_and_indexes_every_good_file(tmp_path):
    settings = Settings(
        home=tmp_path / "home",
        embedding_model="hash",
        device="cpu",
        slack_workspace="fuzz",
        max_file_seconds=5.0,
        max_parse_memory_bytes=512 * MB,
    )
    bench.CAPS.update({"single-line-50mb": 0, "slow-single-line": 0, "slack-zip-bomb": 1})
    result = bench.run(tmp_path, bad=40, good=5, seed=7, settings=settings, bomb_bytes=300 * MB)
    assert result["problems"] == []
    assert result["inputs"] >= 40 and result["good_indexed"] == result["good"]
    assert result["slowest_file"][0] < 10  # 5 s, and the import of the parsers


def test_a_file_that_parses_too_long_is_stopped_and_the_next_one_parsed(tmp_path: Path):
    slow = tmp_path / "slow.md"
    slow.write_text("lorem " * (MB // 2))  # one long line: unstructured takes tens of seconds
    good = tmp_path / "good.md"
    good.write_text("# Good\n\nA good page.\n")
    with ParseWorker(FileLimits(max_file_seconds=1.0)) as worker:
        worker.parse(good, "x", {})  # a started worker: the limit is the parse's alone
        started = time.perf_counter()
        with pytest.raises(ParseError, match=r"took longer than max_file_seconds \(1 s\)"):
            worker.parse(slow, "x", {})
        assert time.perf_counter() - started < 3
        assert "A good page." in worker.parse(good, "x", {}).chunks[0].text
        assert worker.restarts == 1


def test_beside_other_threads_workers_come_from_a_fork_server(tmp_path: Path):
    """A fork copies only the calling thread: a lock another thread holds stays held in the
    child, and its parses hang (seen after a Spark session had started in the process: four
    handbook files "took longer than max_file_seconds"). With another thread running, the
    workers are forked by a clean fork server instead, and parse, time out and restart alike."""
    import threading

    from kbqa.ingest.worker import _context

    assert _context().get_start_method() in ("fork", "forkserver")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert _context().get_start_method() == "forkserver"
        slow = tmp_path / "slow.md"
        slow.write_text("lorem " * (MB // 2))
        with ParseWorker(FileLimits(max_file_seconds=1.0)) as worker:
            worker.limits = FileLimits(max_file_seconds=60.0)  # the server's first start
            assert worker.parse(HANDBOOK / "policies" / "expenses.pdf", "x", {}).chunks
            worker.limits = FileLimits(max_file_seconds=1.0)
            with pytest.raises(ParseError, match=r"took longer than max_file_seconds"):
                worker.parse(slow, "x", {})
            assert worker.parse(HANDBOOK / "policies" / "pto.html", "x", {}).chunks
            assert worker.restarts == 1
    finally:
        stop.set()
        other.join()


@pytest.mark.slow
def test_a_parser_that_runs_out_of_memory_is_stopped(tmp_path: Path):
    big = tmp_path / "big.md"
    big.write_text("lorem " * (3 * MB))  # ~3 GB of parser memory before it would finish
    with ParseWorker(FileLimits(max_file_seconds=120, max_parse_memory_bytes=64 * MB)) as w:
        # Where the allocation fails decides the reason: in the worker it is "ran out of
        # memory"; inside unstructured, which catches MemoryError, the file reads as having no
        # text. Either way the parse is stopped, the file reported, and the worker goes on.
        with pytest.raises(ParseError, match=r"ran out of memory|cannot parse|no text found"):
            w.parse(big, "x", {})
        assert w.parse(HANDBOOK / "policies" / "pto.html", "x", {}).chunks


def test_a_docx_bomb_is_refused_before_it_is_inflated(tmp_path: Path):
    bomb = tmp_path / "bomb.docx"
    bench._bomb(bomb, 300 * MB)
    assert bomb.stat().st_size < 2 * MB
    started = time.perf_counter()
    with pytest.raises(ParseError, match=r"unpacks to 30\d MB, more than max_unpacked_bytes"):
        parse_file(bomb)
    assert time.perf_counter() - started < 1


def test_a_too_large_file_is_not_read(tmp_path: Path):
    path = tmp_path / "huge.md"
    with open(path, "wb") as f:
        f.truncate(40 * MB)  # sparse: costs no disk
    with pytest.raises(ParseError, match=r"40.0 MB, more than max_file_bytes \(32 MB\)"):
        parse_file(path)


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("latin1.md", "# Caf\xe9\n\nna\xefve\n".encode("latin-1"), "not UTF-8 text"),
        ("random.md", bytes(range(256)) * 8, "binary data, not text"),
        ("page.html", b"<html>\x00\x01\x02</html>", "binary data, not text"),
    ],
)
def test_text_that_is_not_utf8_or_not_text_is_refused(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ParseError, match=reason):
        parse_file(path)


def test_symlink_loops_and_broken_links_are_reported(tmp_path: Path):
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    (tmp_path / "self.md").symlink_to("self.md")
    (tmp_path / "ping.md").symlink_to("pong.md")
    (tmp_path / "pong.md").symlink_to("ping.md")
    (tmp_path / "gone.md").symlink_to("nowhere.md")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to("..")  # a folder loop: not followed
    files, _, broken = discover_all(tmp_path)
    assert files == [tmp_path / "a.md"]
    assert dict(broken) == {
        str(tmp_path / "self.md"): "a symbolic link loop",
        str(tmp_path / "ping.md"): "a symbolic link loop",
        str(tmp_path / "pong.md"): "a symbolic link loop",
        str(tmp_path / "gone.md"): "a broken symbolic link (to nowhere.md)",
    }


def test_an_unreadable_slack_export_is_reported_and_the_rest_ingested(settings, docs, tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as out:
        out.writestr("channels.json", "{not json")
    kb = KnowledgeBase(settings.replace(slack_workspace="acme"), embedder=HashEmbedder())
    report = kb.ingest([docs, export])
    assert report.added == 3
    assert [name for name, _ in report.failed] == [str(export)]
    assert "channels.json: malformed JSON" in report.failed[0][1]
