"""The note for a question not in the packaged embedder's language (assistant/language.py)."""

import json
from pathlib import Path

from conftest import HANDBOOK
from kbqa.assistant.language import NOTE, note_for


def expect(noted: tuple[str, ...], plain: tuple[str, ...]) -> None:
    """The packaged embedder's note on each of `noted` and on none of `plain`."""
    for question in noted:
        assert note_for(question, "all-MiniLM-L6-v2") == NOTE, question
    for question in plain:
        assert note_for(question, "all-MiniLM-L6-v2") == "", question


def test_questions_in_other_languages_get_the_note_and_english_ones_do_not():
    expect(
        noted=(
            "Auf welchem Port läuft der route-planner?",  # German: found by a new user, no note
            "Hoe wijzig ik het wachtwoord van de database?",
            "Quel est le port du route-planner ?",
            "Как сменить пароль?",
        ),
        plain=(
            "What port does route-planner listen on?",
            "Is the café on the ground floor open before the all-hands?",  # one borrowed word
            "Which team owns billing-svc?",
        ),
    )
    assert note_for("Auf welchem Port läuft der route-planner?", "paraphrase-multilingual") == ""


def test_a_short_question_in_another_language_gets_the_note_and_a_short_english_one_does_not():
    expect(
        noted=(
            "Mag ik thuiswerken?",  # Dutch: found by a new user, abstained with no note
            "Hoe werkt SSO?",
            "Wie viel Urlaub?",
            "Pourquoi SSO ?",
        ),
        plain=(
            "loki retention?",
            "EU region?",  # words English writes too: "eu", "es", "la", "comment", a URL's "com"
            "ES version?",
            "LA office address?",
            "comment prefix?",
            "grafana.example.com url?",
            "café hours?",
        ),
    )


def test_a_short_question_with_no_word_the_embedder_knows_gets_the_note():
    expect(
        noted=(
            "Hoeveel vakantiedagen?",  # Dutch, none of the listed function words: no note before
            "Thuiswerken toegestaan?",
            "Declaraties indienen?",
        ),
        plain=("loki retention?", "kubectl?"),  # one word alone says too little
    )
    # Names the embedder's vocabulary lacks, which the passages found for the question use.
    grafana = "Grafana lives at https://grafana.larkspur.io; the URL needs the VPN."
    assert note_for("grafana url?", "all-MiniLM-L6-v2", [grafana]) == ""
    assert note_for("Hoeveel vakantiedagen?", "all-MiniLM-L6-v2", [grafana]) == NOTE


def english_questions() -> list[str]:
    """Every English question of tests/data: the handbook's, the follow-up sets', the
    rewritten follow-ups', the document sets', HaluEval's (its sample and the answers read by
    hand) and the freshness fixture's."""
    data = Path(__file__).parent / "data"
    questions = []
    for path in [data / "handbook_qa.json", *sorted(data.glob("followups*.json"))]:
        sets = json.loads(path.read_text())
        for item in [*sets.get("answerable", []), *sets.get("unanswerable", [])]:
            questions.append(item["question"])
        for pair in sets.get("pairs", []):
            questions += [pair["first"], pair["followup"]]
        questions += [item["question"] for item in sets.get("standalone", [])]
    for item in json.loads((data / "rewritten_followups.json").read_text()):
        questions += [item["followup"], item["standalone"]]
    lines = [*sorted(data.glob("docset/*/questions.jsonl")), data / "evals/halueval_sample.jsonl"]
    for path in lines:
        questions += [json.loads(line)["question"] for line in path.read_text().splitlines()]
    fresh = json.loads((data / "freshness/questions.json").read_text())
    questions += [item["question"] for item in fresh["questions"]]
    for path in sorted(data.glob("manual_read*.json")):
        read = json.loads(path.read_text())
        answers = read if isinstance(read, list) else read["answers"]
        questions += [item["question"] for item in answers]
    return questions


def test_no_english_question_of_the_test_sets_gets_the_note(kb):
    questions = english_questions()
    assert len(questions) > 4000
    # A terse follow-up whose words are names ("larkdb rpo?") is read by the passages found
    # for it, which use them: asked of the handbook, as it is asked in kbqa.
    unread = [q for q in questions if note_for(q, "all-MiniLM-L6-v2")]
    assert len(unread) <= 5, unread
    kb.ingest([HANDBOOK])
    assert [q for q in unread if kb.ask(q, extractive=True).note] == []
