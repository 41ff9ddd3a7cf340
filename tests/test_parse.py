from pathlib import Path

import pytest

from conftest import HANDBOOK
from kbqa.errors import ParseError
from kbqa.ingest import discover, parse_file


def test_markdown_chunks_keep_their_heading_path(docs: Path):
    doc = parse_file(docs / "runbooks" / "db.md")
    assert doc.title == "Database runbook"
    by_heading = {c.heading: c.text for c in doc.chunks}
    assert (
        "vault write database/rotate-role/staging-app"
        in by_heading["Database runbook › Rotating credentials"]
    )
    assert "02:00 UTC" in by_heading["Database runbook › Backups"]
    assert [c.position for c in doc.chunks] == list(range(len(doc.chunks)))


@pytest.mark.parametrize(
    "name, heading, fact",
    [
        ("policies/expenses.pdf", "Home office stipend", "$750"),
        ("onboarding/laptop-setup.docx", "Enrolling in Kandji", "larkspur.kandji.io/enroll"),
        ("policies/pto.html", "Carry-over", "31 March"),
        ("runbooks/kafka-consumer-lag.txt", "CHECKING THE LAG", "kafka-consumer-groups.sh"),
    ],
)
def test_every_format_yields_headed_chunks(name: str, heading: str, fact: str):
    doc = parse_file(HANDBOOK / name)
    assert any(heading in c.heading and fact in c.text for c in doc.chunks), [
        (c.heading, c.text[:60]) for c in doc.chunks
    ]


def test_restructuredtext_is_parsed(tmp_path: Path):
    path = tmp_path / "guide.rst"
    path.write_text("Guide\n=====\n\nSetup\n-----\n\nInstall with pip install larkctl.\n")
    doc = parse_file(path)
    assert any("pip install larkctl" in c.text for c in doc.chunks)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("fake.pdf", b"this is not a pdf at all", "not a PDF file"),
        ("fake.docx", b"plain text pretending", "not a DOCX file"),
        ("empty.md", b"  \n\n ", "empty file"),
        ("image.png", b"\x89PNG\r\n", "unsupported file type '.png'"),
    ],
)
def test_bad_files_raise_a_one_line_reason(tmp_path: Path, name: str, content: bytes, reason: str):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError) as info:
        parse_file(path)
    assert str(info.value) == reason


def test_truncated_pdf_is_reported_not_raised_as_a_crash(tmp_path: Path):
    good = (HANDBOOK / "policies" / "expenses.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(good[:300])
    with pytest.raises(ParseError):
        parse_file(path)


def test_discover_skips_hidden_files_and_separates_unsupported(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD.md").write_text("# no")
    (tmp_path / "a.md").write_text("# A")
    (tmp_path / "b.png").write_bytes(b"\x89PNG")
    supported, unsupported = discover(tmp_path)
    assert supported == [tmp_path / "a.md"]
    assert unsupported == [tmp_path / "b.png"]
