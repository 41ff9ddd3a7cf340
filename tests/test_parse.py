from pathlib import Path

import pytest

from conftest import HANDBOOK
from kbqa.errors import ParseError
from kbqa.ingest import discover, parse_file
from kbqa.ingest.partition import markup_share
from kbqa.types import Hit

MARKUP = Path(__file__).parent / "data" / "markup"


def labels(doc) -> list[str]:
    return [Hit(0, 0.0, c.text, c.heading, doc.uri, doc.title).label for c in doc.chunks]


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
        (
            "LICENSE",
            b"MIT License\n",
            "unsupported file type 'LICENSE' (no extension, not HTML or PDF)",
        ),
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


def test_a_sphinx_page_with_a_blank_line_before_its_doctype_is_parsed_as_html():
    # libmagic calls this page application/javascript, and unstructured then plain text.
    assert (MARKUP / "sphinx-page.html").read_bytes().startswith(b"\n<!DOCTYPE html>")
    doc = parse_file(MARKUP / "sphinx-page.html")
    assert doc.title == "Upgrading larkctl"
    assert all("<" not in c.text and markup_share(c.text) == 0 for c in doc.chunks)
    by_heading = {c.heading: c.text for c in doc.chunks}
    assert "pip install --upgrade larkctl" in by_heading["Upgrading larkctl › Upgrading with pip"]
    assert "state.db before an upgrade" in by_heading["Upgrading larkctl › Before you start"]
    # Only the page's main content: no navigation, search box, footer or "¶" heading links.
    text = " ".join(c.heading + " " + c.text for c in doc.chunks)
    for chrome in ("Navigation", "Quick search", "Copyright", "¶", "$(document)"):
        assert chrome not in text


def test_what_precedes_the_pages_own_heading_is_left_out(tmp_path: Path):
    path = tmp_path / "general.html"
    path.write_text(
        "<html><head><title>FAQ: General &#8212; Django documentation</title></head><body>"
        "<div id='hd'><h1>Django documentation</h1><a href='index.html'>Home</a> | "
        "<a href='contents.html'>Table of contents</a></div>"
        "<h1>FAQ: General</h1><h2>Is Django stable?</h2><p>Yes, it is quite stable.</p>"
        "</body></html>"
    )
    doc = parse_file(path)
    assert doc.title == "FAQ: General"
    assert [(c.heading, c.text) for c in doc.chunks] == [
        ("FAQ: General › Is Django stable?", "Is Django stable?\n\nYes, it is quite stable.")
    ]


@pytest.mark.parametrize("name", ["upgrading.txt", "upgrading"])
def test_an_html_page_under_another_extension_or_none_is_sniffed(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + (MARKUP / "sphinx-page.html").read_bytes())
    (tmp_path / "Makefile").write_text("all:\n\techo <p>\n")
    assert discover(tmp_path) == ([path], [tmp_path / "Makefile"])
    doc = parse_file(path)
    assert doc.metadata["format"] == "html"
    assert doc.title == "Upgrading larkctl"
    assert all("<" not in c.text for c in doc.chunks)


def test_an_extensionless_pdf_is_sniffed(tmp_path: Path):
    path = tmp_path / "expenses"
    path.write_bytes((HANDBOOK / "policies" / "expenses.pdf").read_bytes())
    doc = parse_file(path)
    assert doc.metadata["format"] == "pdf"
    assert any("$750" in c.text for c in doc.chunks)


@pytest.mark.parametrize(
    "name, content",
    [
        # a wiki export whose markup was escaped twice: the HTML parser reads tags as text
        ("export.html", (MARKUP / "escaped.html").read_bytes()),
        # an HTML fragment (no doctype, nothing to sniff) saved as text
        (
            "fragment.txt",
            b'<div class="content">\n<ul class="menu">\n<li class="item"><a href="/a">A</a></li>\n'
            b'<li class="item"><a href="/b">B</a></li>\n</ul>\n</div>\n',
        ),
    ],
)
def test_a_file_that_parses_to_markup_is_refused(tmp_path: Path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(
        ParseError, match=r"^mostly markup, not text: \d+% of its text is HTML tags$"
    ):
        parse_file(path)


def test_a_page_whose_examples_are_html_is_kept(tmp_path: Path):
    # Like Django's forms docs: prose, and a chunk of the HTML a form renders (90 % tags).
    example = (
        '&lt;tr&gt;&lt;th&gt;&lt;label for="id_subject"&gt;Subject:&lt;/label&gt;&lt;/th&gt;'
        '&lt;td&gt;&lt;input type="text" name="subject" maxlength="100" required '
        'id="id_subject"&gt;&lt;/td&gt;&lt;/tr&gt;\n'
    )
    prose = "<p>A bound form validates its data and renders each field as a table row.</p>"
    path = tmp_path / "forms.html"
    path.write_text(
        "<html><body><h1>Working with forms</h1>"
        + "".join(f"<h2>Part {n}</h2>{prose * 6}" for n in range(4))
        + f"<h2>Rendered output</h2><pre>{example * 2}</pre></body></html>"
    )
    doc = parse_file(path)
    rendered = next(c for c in doc.chunks if c.heading.endswith("Rendered output"))
    assert markup_share(rendered.text) > 0.5
    assert '<input type="text" name="subject"' in rendered.text


def test_text_about_html_is_not_markup():
    prose = (
        "Wrap each paragraph in <p> and </p>; a link is <a href='/docs'>the docs</a>. "
        "Functions return <Response [200]> objects, and <module> is a placeholder."
    )
    assert 0 < markup_share(prose) < 0.3
    assert markup_share("<Response [200]> and <module>") == 0
    assert markup_share('<meta name="viewport" content="width=device-width" />') == 1


@pytest.mark.parametrize(
    "content",
    [
        "<html><body><h1>Café</h1><p>Ein Bäcker in Köln.</p></body></html>".encode(),
        '<html><head><meta charset="iso-8859-1"></head><body><h1>Café</h1>'
        "<p>Ein Bäcker in Köln.</p></body></html>".encode("latin-1"),
    ],
)
def test_a_pages_encoding_is_kept(tmp_path: Path, content: bytes):
    path = tmp_path / "cafe.html"
    path.write_bytes(content)
    doc = parse_file(path)
    assert doc.title == "Café"
    assert "Ein Bäcker in Köln." in doc.chunks[0].text


def test_a_plain_text_files_labels_say_which_document_they_are_from(tmp_path: Path):
    # Plain text marks no title: each guessed heading is a section of the file, which its
    # name names, as a Markdown section's label starts with its document's title.
    doc = parse_file(HANDBOOK / "runbooks" / "kafka-consumer-lag.txt")
    assert labels(doc)[:2] == [
        "Kafka consumer lag › RUNBOOK: TRACKER KAFKA CONSUMER LAG",
        "Kafka consumer lag › WHAT THE ALERT MEANS",
    ]
    glossary = labels(parse_file(HANDBOOK / "onboarding" / "glossary.txt"))
    assert glossary[-1] == "Glossary › LARKSPUR TERMS"  # not the title alone
    path = tmp_path / "tracker-notes.txt"
    path.write_text(
        "OVERVIEW\n\nThe tracker reads GPS pings from Kafka and writes positions.\n\n"
        "INSTALLING\n\nRun the installer from the bastion host and wait for it.\n"
    )
    assert labels(parse_file(path)) == ["Tracker notes › OVERVIEW", "Tracker notes › INSTALLING"]


def test_a_plain_text_files_title_writes_a_word_as_its_text_does(tmp_path: Path):
    # "vpn.txt" was titled "Vpn": the file writes "VPN" in its sentences.
    assert parse_file(HANDBOOK / "faq" / "vpn.txt").title == "VPN"
    path = tmp_path / "sso-for-new-laptops.txt"
    path.write_text("SETTING UP\n\nSign in with SSO on a new laptop; SSO uses Okta.\n")
    assert parse_file(path).title == "SSO for new laptops"
    # A heading in capitals is not how the text writes a word; a word it lacks is as before.
    path = tmp_path / "backup-policy.txt"
    path.write_text("BACKUP POLICY\n\nBackups run nightly and are kept for a month.\n")
    assert parse_file(path).title == "Backup policy"


def test_a_section_named_by_a_word_of_the_title_keeps_its_label():
    # "## Kafka" under "# Messaging: Kafka and RabbitMQ" was labelled as the document alone,
    # so the Kafka and RabbitMQ sections read as one (and were cited as one: "[1][2]").
    shown = set(labels(parse_file(HANDBOOK / "architecture" / "messaging.md")))
    assert {
        "Messaging: Kafka and RabbitMQ › Kafka",
        "Messaging: Kafka and RabbitMQ › RabbitMQ",
    } <= shown
    lag = Hit(
        0, 0.0, "", "Kafka consumer lag runbook › Kafka", "/lag.md", "Kafka consumer lag runbook"
    )
    assert lag.label == "Kafka consumer lag runbook › Kafka"
    # A Slack thread's heading, the channel and its first line, repeats its title: not shown twice.
    thread = Hit(
        0, 0.0, "", "#deploys › :ship: freeze starts…", "", "#deploys: :ship: freeze starts…"
    )
    assert thread.label == "#deploys: :ship: freeze starts…"
