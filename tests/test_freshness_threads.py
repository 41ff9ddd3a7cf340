"""Corrections inside a Slack thread: a later message that corrects an earlier claim (its
words, a ✅, the asker's thanks, an edit) takes the earlier one out of the evidence; the earlier
claim is kept in the thread's metadata with the correction that superseded it."""

import importlib.util
from decimal import Decimal
from pathlib import Path

from conftest import ROOT
from kbqa.ingest.corrections import Message, conflict, superseded
from kbqa.ingest.slack_export import read_export

_spec = importlib.util.spec_from_file_location(
    "gitrepo", ROOT / "tests" / "data" / "freshness" / "gitrepo.py"
)
gitrepo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gitrepo)
EXPORT = ROOT / "tests" / "data" / "freshness" / "slack"


def m(ts: int, author: str, text: str, **kw) -> Message:
    return Message(Decimal(ts), author, text, **kw)


def test_each_cue_marks_the_superseded_claims_of_the_fixture():
    documents, _ = read_export(EXPORT, "quillhaven", False, 1 << 20)
    scores = gitrepo.cue_scores(documents, gitrepo.questions()["threads"])
    assert {
        "actually",
        "correction",
        "no longer",
        "instead of",
        "reaction",
        "thanks",
        "edit",
    } <= set(scores)
    for cue, row in scores.items():
        assert row["fp"] == 0, cue  # precision: the cue words alone (ng01-ng06) mark nothing
        assert row["tp"] >= 1 and row["fn"] == 0, cue


def test_a_corrected_message_leaves_the_text_and_stays_in_the_metadata():
    documents, _ = read_export(EXPORT, "quillhaven", False, 1 << 20)
    [doc] = [d for d in documents if "read replica" in d.title]
    text = "\n".join(c.text for c in doc.chunks)
    assert "port 5433." not in text and "6433" in text
    [old] = doc.metadata["superseded"]
    assert old["text"] == "The ledger read replica accepts connections on port 5433."
    assert old["cue"] == "actually" and old["author"] == "Cy Park"
    assert "6433" in old["correction"]


def test_cue_words_without_a_different_value_correct_nothing():
    thread = [
        m(1, "asker", "How many workers does the exporter run?"),
        m(2, "bo", "The exporter runs 4 workers."),
        m(3, "asker", "Actually, another question: where is its config? Thanks!"),
    ]
    assert superseded(thread) == {}
    # The question itself is never a claim, even when it holds a value.
    question = [m(1, "a", "Is 5k the batch size? I see 5000 rows."), m(2, "b", "It is 2000 rows.")]
    assert superseded(question) == {}


def test_an_edit_after_a_contradiction_supersedes_it():
    thread = [
        m(1, "asker", "When does the retention job run?"),
        m(2, "ana", "The retention job runs at 04:00 UTC.", edited=Decimal(10)),
        m(5, "bo", "I think the retention job runs at 05:00 UTC."),
    ]
    assert superseded(thread) == {2: (1, "edit")}
    assert superseded(thread, cues=("actually",)) == {}


def test_values_for_different_things_do_not_conflict():
    assert not conflict("The web team is managed by Ines Costa.", "Refunds use port 9102.")
    assert conflict("Staging runs on stg-ledger-01.", "Staging runs on stg-ledger-07.")


def test_a_list_written_with_a_slash_is_the_same_list_written_with_and():
    thread = [
        m(1, "asker", "Can a SEV3 fix ship during the freeze?"),
        m(2, "priya", "No, the freeze (18 Nov – 6 Dec) is for SEV1/SEV2 fixes only."),
        m(
            3,
            "bo",
            "Actually the freeze is for SEV1 and SEV2 fixes only, 18 November to 6 December.",
        ),
    ]
    assert superseded(thread) == {}
    assert not conflict("Deploys need SEV1 or SEV2.", "Deploys need SEV2/SEV1.", True)
    assert conflict("The freeze is for SEV1/SEV2 fixes.", "The freeze is for SEV1 and SEV3 fixes.")


def test_the_example_export_has_no_correction_to_find(tmp_path: Path):
    documents, _ = read_export(ROOT / "examples" / "slack-export", "larkspur", False, 1 << 24)
    assert [s for d in documents for s in d.metadata.get("superseded", [])] == []
