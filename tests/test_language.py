"""The note for a question not in the packaged embedder's language (assistant/language.py)."""

from kbqa.assistant.language import NOTE, note_for


def test_questions_in_other_languages_get_the_note_and_english_ones_do_not():
    for question in (
        "Auf welchem Port läuft der route-planner?",  # German: found by a new user, no note
        "Hoe wijzig ik het wachtwoord van de database?",
        "Quel est le port du route-planner ?",
        "Как сменить пароль?",
    ):
        assert note_for(question, "all-MiniLM-L6-v2") == NOTE, question
    for question in (
        "What port does route-planner listen on?",
        "Is the café on the ground floor open before the all-hands?",  # one borrowed word
        "Which team owns billing-svc?",
    ):
        assert note_for(question, "all-MiniLM-L6-v2") == "", question
    assert note_for("Auf welchem Port läuft der route-planner?", "paraphrase-multilingual") == ""
