"""`kbqa ask` finds a `kbqa serve` running on the same home (a real server process) through the
file it writes there, asks through it, and answers in-process when it is gone or stale."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import run

from kbqa.client import SERVER_FILE, announce, running_server, withdraw

# A real `kbqa serve` process and CLI processes: left out of `make check`.
pytestmark = pytest.mark.slow

QUESTION = "when do the larkdb backups run nightly?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ingested_home(tmp_path: Path) -> tuple[Path, Path]:
    from conftest import make_docs

    make_docs(tmp_path / "docs")
    result = run(["ingest", "docs"], tmp_path / "home", tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "home", tmp_path


def _serve(home: Path, cwd: Path, port: int) -> subprocess.Popen:
    environ = {
        **os.environ,
        "KBQA_HOME": str(home),
        "KBQA_EMBEDDING_MODEL": "hash",
        "KBQA_GENERATOR_MODEL": "echo",
        "KBQA_ANSWER_STYLE": "free",
        "KBQA_MIN_HIT_SCORE": "0.1",
        "KBQA_MIN_CONFIDENCE": "0.0",
        # The file's secret must let the command line in even where loopback needs a token.
        "KBQA_ALLOW_LOOPBACK_WITHOUT_TOKEN": "false",
    }
    command = [sys.executable, "-m", "kbqa", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while running_server(home) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()  # never left running past the test
            process.wait(timeout=10)
            pytest.fail(f"the server did not announce itself: {process.stderr.read().decode()}")
        time.sleep(0.2)
    return process


def test_ask_goes_through_the_server_on_the_same_home_and_falls_back_when_it_is_gone(
    ingested_home,
):
    home, cwd = ingested_home
    port = _free_port()
    server = _serve(home, cwd, port)
    try:
        announced = json.loads((home / SERVER_FILE).read_text())
        assert announced["url"] == f"http://127.0.0.1:{port}" and announced["pid"] == server.pid
        assert (home / SERVER_FILE).stat().st_mode & 0o077 == 0  # the owner's only
        first = run(["ask", "--json", QUESTION], home, cwd)
        assert first.returncode == 0, first.stderr
        # The second answer comes from the server's answer cache: it went through the server.
        second = json.loads(run(["ask", "--json", QUESTION], home, cwd).stdout)
        assert second["cached"] is True
        local = run(["ask", "--json", "--local", QUESTION], home, cwd)
        assert json.loads(local.stdout)["cached"] is False
        shown = json.loads(first.stdout)
        assert set(shown) == set(json.loads(local.stdout))  # the same shape either way
        assert shown["answer"] == json.loads(local.stdout)["answer"]
        text = run(["ask", QUESTION], home, cwd)
        assert "02:00 UTC" in text.stdout and "answered" in text.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not (home / SERVER_FILE).exists()  # removed on exit
    after = run(["ask", "--json", QUESTION], home, cwd)
    assert after.returncode == 0 and json.loads(after.stdout)["cached"] is False


def test_chat_goes_through_the_server_on_the_same_home(ingested_home):
    # The replay: `kbqa chat` loaded the models again beside a running `kbqa serve`.
    home, cwd = ingested_home
    server = _serve(home, cwd, _free_port())
    try:
        assert run(["ask", QUESTION], home, cwd).returncode == 0  # now in the server's cache
        environ = {**os.environ, "KBQA_HOME": str(home), "KBQA_EMBEDDING_MODEL": "hash"}
        chats = {}
        for extra in ([], ["--local"]):
            chats[bool(extra)] = subprocess.run(
                [sys.executable, "-m", "kbqa", "chat", *extra],
                cwd=cwd,
                env={**environ, "KBQA_GENERATOR_MODEL": "echo", "KBQA_ANSWER_STYLE": "free",
                     "KBQA_MIN_HIT_SCORE": "0.1", "KBQA_MIN_CONFIDENCE": "0.0"},
                input=f"{QUESTION}\n\n",
                capture_output=True,
                text=True,
            )  # fmt: skip
        through, local = chats[False], chats[True]
        assert through.returncode == 0 and local.returncode == 0, through.stderr + local.stderr
        assert "answering through the kbqa server running on this home" in through.stdout
        # The answer came from the server's cache: it went through the server.
        assert "02:00 UTC" in through.stdout and "(answered just now" in through.stdout
        assert "answering through" not in local.stdout and "(answered" not in local.stdout
        assert "02:00 UTC" in local.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_a_running_server_answers_the_first_question_after_an_ingest_from_it(ingested_home):
    # The fourth walkthrough: an idle server answered the first question after another
    # process's ingest from the old index (a deleted file quoted, a new one not found).
    home, cwd = ingested_home
    server = _serve(home, cwd, _free_port())
    try:
        (cwd / "docs" / "hangar.md").write_text("# Hangar\n\nThe zeppelin hangar opens at 06:15.\n")
        assert run(["ingest", "docs"], home, cwd).returncode == 0  # another process
        time.sleep(3)  # idle: nobody asks while the server follows the database
        first = json.loads(
            run(["ask", "--json", "when does the zeppelin hangar open?"], home, cwd).stdout
        )
        assert first["hits"] and first["hits"][0]["uri"].endswith("hangar.md"), first["hits"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    said = server.stdout.read().decode().splitlines()  # where requests go, and that it stopped
    assert said[-2:] == [
        f"each request is logged in {home.resolve()}/logs/kbqa.log",
        "kbqa stopped serving",
    ]


def test_a_stale_or_foreign_server_file_is_ignored(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    # A dead process: the file is removed.
    path, _ = announce(home, "127.0.0.1", _free_port())
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "pid": 2**22 + 12345}))
    assert running_server(home) is None and not path.exists()
    # A live process (this one) with nothing listening on the port: ignored, kept.
    path, secret = announce(home, "127.0.0.1", _free_port())
    started = time.monotonic()
    assert running_server(home) is None and path.exists()
    assert time.monotonic() - started < 2
    # Another server's file is not removed by this one on exit.
    withdraw(path, "another secret")
    assert path.exists()
    withdraw(path, secret)
    assert not path.exists()
    path.write_text("not json")
    assert running_server(home) is None
