"""The command line run as a user runs it (a subprocess), with fast fakes chosen by settings."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_docs


def run(args: list[str], home: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "KBQA_HOME": str(home),
        "KBQA_EMBEDDING_MODEL": "hash",
        "KBQA_GENERATOR_MODEL": "echo",
        "KBQA_ANSWER_STYLE": "free",
        "KBQA_MIN_HIT_SCORE": "0.1",
        "KBQA_MIN_CONFIDENCE": "0.0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "kbqa", *args], cwd=cwd, env=environ, capture_output=True, text=True
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> tuple[Path, Path]:
    """(home, working directory) of one `kbqa ingest docs`, shared by the tests that only read
    it: each `kbqa` start costs seconds (imports), so they share one ingest."""
    cwd = tmp_path_factory.mktemp("cli")
    make_docs(cwd / "docs")
    result = run(["ingest", "docs"], cwd / "home", cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "home", cwd


def test_a_misspelt_setting_in_the_environment_is_said_on_stderr(home: Path, tmp_path: Path):
    # Read before the log was set up, the warning was lost: KBQA_TOPK was ignored silently.
    home.mkdir(parents=True, exist_ok=True)
    result = run(["status"], home, tmp_path, KBQA_TOPK="6")
    assert result.returncode == 0, result.stderr
    assert "KBQA_TOPK is not a setting (did you mean 'top_k'?): it is ignored" in result.stderr


@pytest.mark.slow
def test_ingest_prints_a_summary_naming_failures(docs: Path, home: Path, tmp_path: Path):
    (docs / "broken.pdf").write_bytes(b"nope")
    result = run(["ingest", str(docs)], home, tmp_path)
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith("added 3 · updated 0 · unchanged 0 · removed 0 · failed 1")
    assert "(broken.pdf: not a PDF file)" in line and " chunks in " in line


def test_ask_prints_answer_then_numbered_sources_with_paths(ingested):
    result = run(["ask", "when do the larkdb backups run nightly?"], *ingested)
    assert result.returncode == 0, result.stderr
    answer, blank, source = result.stdout.splitlines()[:3]
    assert "02:00 UTC" in answer and answer.endswith("[1].")
    assert blank == ""
    # A file as a file:// link, which terminals open on a click, and the age of every source.
    _home, cwd = ingested
    link = (cwd / "docs/runbooks/db.md").resolve().as_uri()
    assert source == f"[1] Database runbook › Backups — {link} · today"


def test_ask_json_has_the_documented_shape(ingested):
    result = run(["ask", "--json", "-k", "2", "which port does tracker use?"], *ingested)
    data = json.loads(result.stdout)
    assert set(data) >= {"question", "answer", "abstained", "citations", "hits", "timings"}
    assert len(data["hits"]) == 2
    assert set(data["hits"][0]) == {
        *("chunk_id", "uri", "title", "heading", "link", "text", "score", "updated_at", "author")
    }
    assert {"retrieve_ms", "generate_ms"} <= set(data["timings"])
    if data["citations"]:
        assert set(data["citations"][0]) == {"n", *data["hits"][0]}


def test_abstention_lists_the_closest_sources(ingested):
    result = run(["ask", "zebra giraffe safari?"], *ingested, KBQA_MIN_HIT_SCORE="0.99")
    lines = result.stdout.splitlines()
    assert lines[0] == "I couldn't find this in the knowledge base. Closest sources:"
    assert lines[1].startswith("  - ") and " — " in lines[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", "anything?"], "the knowledge base is empty: run `kbqa ingest PATH` first"),
        (["ingest", "no/such/dir"], "no/such/dir: no such file or directory"),
        (["reindex"], "nothing to reindex"),
        (["ask", "  "], "the question is empty"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message, home: Path, tmp_path: Path):
    result = run(args, home, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("kbqa: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    if "knowledge base is empty" in message:  # which home: a user on the wrong one sees it
        assert f"(home {home})" in result.stderr


@pytest.mark.slow
def test_unknown_generator_model_is_a_one_line_error(ingested):
    result = run(["ask", "--model", "/no/such/model", "tracker port?"], *ingested)
    assert result.returncode == 1
    assert "generator_model '/no/such/model' cannot be loaded" in result.stderr
    assert "Traceback" not in result.stderr
    # NAME@BACKEND picks the runtime, as `kbqa eval qa --model` does: llama.cpp looks for a GGUF.
    result = run(["ask", "--model", "/no/such/model@llama.cpp", "tracker port?"], *ingested)
    assert result.returncode == 1
    assert "generator_model '/no/such/model': no GGUF file at /no/such/model" in result.stderr


def test_bad_setting_in_environment_is_a_one_line_error(home: Path, tmp_path: Path):
    result = run(["status"], home, tmp_path, KBQA_TOP_K="lots")
    assert result.returncode == 1
    assert "setting 'top_k' must be a whole number" in result.stderr


def test_status_reports_counts_models_and_last_run(ingested):
    data = json.loads(run(["status", "--json"], *ingested).stdout)
    assert data["documents"] == 3 and data["chunks"] == data["index_vectors"] > 0
    assert data["embedding_model"] == "hash-256"
    assert data["last_run"]["status"] == "ok" and data["last_run"]["added"] == 3
    text = run(["status"], *ingested).stdout
    assert "documents   3" in text and "last run" in text
    # The home as an absolute path, also when it was given relative to where kbqa runs.
    home, cwd = ingested
    relative = run(["status", "--json"], Path(home.name), cwd)
    assert json.loads(relative.stdout)["home"] == str(home.resolve())
    if importlib.util.find_spec("xllamacpp"):  # what the installed llama.cpp was built for
        assert "AVX" in data["llama_cpp"] and f"llama.cpp   built for {data['llama_cpp']}" in text


def test_ask_quotes_each_unit_of_a_pointed_answer_under_its_span(kb, docs, monkeypatch):
    # In process: the command's core answers by pointing (as the pointer path will).
    from click.testing import CliRunner
    from web.pointing import Pointing

    import kbqa.cli

    kb.ingest([docs])
    units = [("port 7300", "port 7300"), ("billing service", "")]
    monkeypatch.setattr(kbqa.cli, "_kb", lambda settings: Pointing(kb, units))
    question = "which port does the tracker service listen on?"
    home = ["--home", str(kb.settings.home)]
    result = CliRunner().invoke(kbqa.cli.cli, [*home, "ask", question])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        # The span is in bold inside its quote on a terminal, never on a line of its own.
        "> The tracker service listens on port 7300. [1]",
        "> The billing service listens on 7400. [1]",
        "",
        f"[1] Services — {(docs / 'ports.md').resolve().as_uri()} · today",
    ]
    colored = CliRunner().invoke(kbqa.cli.cli, [*home, "ask", question], color=True)
    assert "on \x1b[1mport 7300\x1b[0m." in colored.output.splitlines()[0]
    as_json = json.loads(
        CliRunner().invoke(kbqa.cli.cli, [*home, "ask", "--json", question]).output
    )
    assert as_json["mode"] == "pointed" and as_json["evidence"][0] == {
        "n": 1,
        "text": "The tracker service listens on port 7300.",
        "span": "port 7300",
        "before": "",
        "after": "",
        "probability": 1.0,
    }
