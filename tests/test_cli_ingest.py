"""What `kbqa ingest` prints about the files it leaves out (in process, with the fast fakes)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

import kbqa.cli
from kbqa.app import KnowledgeBase


@pytest.fixture
def ingest(kb: KnowledgeBase, docs: Path, monkeypatch):
    """Run `kbqa ingest docs` from the folder above `docs`; its output."""
    monkeypatch.setattr(kbqa.cli, "_kb", lambda settings: kb)
    monkeypatch.chdir(docs.parent)

    def run() -> str:
        args = ["--home", str(kb.settings.home), "ingest", "docs"]
        result = CliRunner().invoke(kbqa.cli.cli, args)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_one_unsupported_file_is_named_in_the_singular(ingest, docs: Path):
    (docs / "notes.xyz").write_text("not a format kbqa reads")
    out = ingest().splitlines()
    assert "  skipped 1 file of an unsupported type: docs/notes.xyz" in out, out


def test_many_unsupported_files_are_named_the_first_few_then_counted(ingest, docs: Path):
    for name in ("a.xyz", "b.png", "c.zip", "d.bin", "e.exe"):
        (docs / name).write_bytes(b"\x00")
    out = ingest().splitlines()
    expected = (
        "  skipped 5 files of unsupported types: docs/a.xyz, docs/b.png, docs/c.zip and 2 more"
    )
    assert expected in out, out


def test_nothing_is_said_of_skipped_files_when_none_are(ingest):
    assert "skipped" not in ingest()


def test_failures_are_separated_by_semicolons(ingest, docs: Path):
    # A reason may hold a comma itself ("binary data, not text").
    (docs / "binary.md").write_bytes(b"# A\x00\x01")
    (docs / "zero.txt").write_text("")
    first = ingest().splitlines()[0]
    assert "failed 2 (binary.md: binary data, not text; zero.txt: empty file)" in first, first


def test_a_named_file_kbqa_cannot_read_is_an_error_and_the_rest_is_ingested(
    kb: KnowledgeBase, docs: Path, monkeypatch
):
    # In a folder an unsupported file is skipped and named; named on its own it is an error.
    monkeypatch.setattr(kbqa.cli, "_kb", lambda settings: kb)
    monkeypatch.chdir(docs.parent)
    (docs.parent / "data.csv").write_text("a,b\n1,2\n")
    args = ["--home", str(kb.settings.home), "ingest", "docs", "data.csv"]
    result = CliRunner().invoke(kbqa.cli.cli, args)
    assert result.exit_code == 1
    assert "data.csv: not a type kbqa reads" in str(result.exception)
    assert kb.store.counts()["chunks"] > 0  # the folder named beside it was ingested
    assert "skipped" not in result.output  # said once, as the error
    alone = CliRunner().invoke(
        kbqa.cli.cli, ["--home", str(kb.settings.home), "ingest", "data.csv"]
    )
    assert alone.exit_code == 1 and alone.output == ""  # no "added 0 · … failed 0" above it
