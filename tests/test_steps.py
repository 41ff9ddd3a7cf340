"""A procedure quoted whole (assistant/steps.py): for a how-to question, a numbered list of a
Markdown source is one unit, and every interface shows it as numbered steps."""

import json
from pathlib import Path

from kbqa.assistant.answerer import Answerer
from kbqa.assistant.steps import procedure, with_procedures
from kbqa.assistant.units import units
from kbqa.render import markdown, slack, terminal
from kbqa.types import Hit

STEPS = [
    "Post a heads-up in #staging-env: the API will blip for two minutes.",
    "Log in to Vault: vault login -method=oidc role=sre",
    "Rotate the password: vault write -f database/rotate-role/staging-app",
]


def _runbook(tmp_path: Path) -> Path:
    path = tmp_path / "runbook.md"
    path.write_text(
        "# Rotating the password\n\nVault rotates it every 30 days.\n\n"
        + "".join(f"{i}. {s.replace('vault ', '`vault ', 1)}`\n" for i, s in enumerate(STEPS, 1))
        + "\nDone.\n"
    )
    return path


def _hit(path: Path) -> Hit:
    # As ingest writes the chunk: plain text, one paragraph a step, the numbers gone.
    text = "Vault rotates it every 30 days.\n\n" + "\n\n".join(STEPS) + "\n\nDone."
    return Hit(1, 1.0, text, "Rotating the password", str(path), "Runbook")


def _asked_how(kb, folder: Path):
    """The pointed answer to a how-to question over `folder`, ingested (again) first."""
    kb.ingest([folder])
    kb.settings = kb.settings.replace(answer_style="pointed")
    *_, answer = Answerer(kb.retriever, kb.generator, kb.settings).answer_stream(
        "How do I rotate the password?"
    )
    assert answer.mode == "pointed", answer.reason
    return answer


def test_a_how_to_question_gets_the_numbered_list_as_one_unit(tmp_path):
    hit = _hit(_runbook(tmp_path))
    found = units([hit])
    assert len([u for u in found if "vault" in u.text]) == 2  # one unit a step
    joined = with_procedures("How do I rotate the password?", [hit], found)
    (whole,) = [u for u in joined if "vault" in u.text]
    assert whole.text == procedure(hit) and whole.text in hit.text
    assert [" ".join(p.split()) for p in whole.text.split("\n\n")] == STEPS
    # The rest of the passage is kept, after the steps: asked how, the steps come first.
    assert [u.text for u in joined].index(whole.text) == 0
    assert any("30 days" in u.text for u in joined[1:])
    # Another kind of question keeps one unit a step.
    assert with_procedures("Which role logs in to Vault?", [hit], found) == found


def test_no_procedure_without_the_source_list_or_with_a_list_cut_by_a_chunk(tmp_path):
    path = _runbook(tmp_path)
    cut = Hit(1, 1.0, "\n\n".join(STEPS[:2]), "Rotating", str(path), "Runbook")
    assert procedure(cut) == ""
    path.unlink()  # the file gone: the plain units stay
    assert procedure(_hit(path)) == ""


def test_a_pointed_procedure_reads_as_numbered_steps_everywhere(kb, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "rotate.md").write_text(
        "# Rotating the password\n\n" + "".join(f"{i}. {s}\n" for i, s in enumerate(STEPS, 1))
    )
    answer = _asked_how(kb, folder)
    (evidence,) = answer.evidence  # the fake points at the first unit: the whole procedure
    assert [" ".join(p.split()) for p in evidence.text.split("\n\n")] == STEPS
    shown = terminal.answer(answer)
    assert "> 1. Post a heads-up" in shown and "> 3. Rotate the password" in shown
    assert "> 2. Log in to Vault" in markdown.markdown(answer)
    assert ">2. Log in to Vault" in json.dumps(slack.answer_blocks(answer)[1])


def test_a_numbered_list_of_an_html_page_is_a_procedure_too(kb, tmp_path):
    """A Sphinx-built page (the docs of most Python projects) writes its steps as an <ol>:
    ingest keeps them as plain paragraphs, and the page's numbers are read back from it."""
    folder = tmp_path / "site"
    folder.mkdir()
    items = "".join(f"<li><p>{s}</p></li>\n" for s in STEPS)
    (folder / "rotate.html").write_text(
        "\n<!DOCTYPE html>\n<html><head><title>Rotating the password</title></head><body>"
        '<div role="navigation"><ul><li>Home</li><li>Index</li></ul></div>'
        '<div role="main"><h1>Rotating the password</h1><p>Vault rotates it every 30 days.</p>'
        f"<ol>\n{items}</ol><ul><li>Ask in #sre if it fails.</li></ul></div></body></html>"
    )
    answer = _asked_how(kb, folder)
    (evidence,) = answer.evidence  # the fake points at the first unit: the whole procedure
    assert [" ".join(p.split()) for p in evidence.text.split("\n\n")] == STEPS
    assert "> 2. Log in to Vault" in terminal.answer(answer)
    # A bulleted list is not a procedure.
    (folder / "rotate.html").write_text(
        (folder / "rotate.html").read_text().replace("<ol>", "<ul>").replace("</ol>", "</ul>")
    )
    answer = _asked_how(kb, folder)
    assert len(answer.evidence[0].text.split("\n\n")) == 1


def test_a_numbered_list_of_a_word_document_is_a_procedure_and_shows_as_one(kb, tmp_path):
    """A DOCX writes its steps as "List Number" paragraphs: ingest keeps them as plain
    paragraphs, and the numbers (and a command in a code font) are read back from the file."""
    import docx

    from kbqa.render import Source, page

    document = docx.Document()
    document.add_heading("Rotating the password", level=1)
    document.add_paragraph("Vault rotates it every 30 days.")
    for step in STEPS:
        document.add_paragraph(step, style="List Number")
    code = document.add_paragraph("Then check it: ")
    code.add_run("vault read database/creds/staging-app").font.name = "Courier New"
    document.add_paragraph("Ask in #sre if it fails.", style="List Bullet")
    folder = tmp_path / "docs"
    folder.mkdir()
    document.save(folder / "rotate.docx")
    answer = _asked_how(kb, folder)
    (evidence,) = answer.evidence  # the fake points at the first unit: the whole procedure
    # Ingest keeps a DOCX list's numbers: the unit starts at the first one, and every
    # interface numbers the steps once.
    assert evidence.text.startswith("1. Post a heads-up")
    assert [p.split(". ", 1)[1] for p in evidence.text.split("\n\n")] == STEPS
    shown = terminal.answer(answer)
    assert "> 1. Post a heads-up" in shown and "> 2. Log in to Vault" in shown
    assert "2. 2." not in shown and "2. 2." not in markdown.markdown(answer)
    # On the page the passage keeps its steps, its code and its bullet, escaped as text.
    shown = page.source_data(Source(1, answer.citations[0].hit))["html"]
    assert "<ol>" in shown and shown.count("<li>") == 4
    assert "<code>vault read database/creds/staging-app</code>" in shown
    assert "#sre" in shown and "<h1>" not in shown  # the heading is the label, not the text


def test_a_numbered_list_of_a_pdf_is_a_procedure_and_its_passage_keeps_its_lists(kb, tmp_path):
    """A PDF's text layer gives its list items as lines ("1. Submit…", "• Travel…"): the
    passage is shown with its numbered steps and its bullets (ingest/pdf_blocks.py)."""
    import shutil

    from kbqa.render import Source, page

    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(Path(__file__).parents[1] / "examples/handbook/policies/expenses.pdf", folder)
    kb.ingest([folder])
    (hit,) = kb.retriever.search("Submit every claim in Ramp within 30 days", k=1)
    shown = page.source_data(Source(1, hit))["html"]
    assert "<ol>" in shown and "<li>Submit every claim in Ramp within 30 days" in shown
    assert "<li>Attach an itemised receipt" in shown and "1. Submit" not in shown
    assert "Receipts and reimbursement" not in shown  # the heading is the label, not the text
    # Asked how, the four steps are one unit, from the first step to the last.
    steps = procedure(hit)
    assert steps.startswith("1. Submit every claim") and steps.endswith("that month's payroll.")
    # The file gone: the passage's plain text, as before (its heading a line of text).
    (folder / "expenses.pdf").unlink()
    assert "<p>Receipts and reimbursement</p>" in page.source_data(Source(1, hit))["html"]
