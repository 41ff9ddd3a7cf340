"""The answering span: what an answer sentence adds to its question."""

import pytest

from kbqa.assistant.span import answer_span, marks_answer, span_bounds


@pytest.mark.parametrize(
    ("question", "sentence", "span"),
    [
        (
            "Which port does route-planner listen on?",
            "route-planner listens on port 8443 [1].",
            "8443",
        ),
        (
            "Who hosted the documentary Resurgence?",
            "Judy Woodruff was the host of the documentary Resurgence [1].",
            "Judy Woodruff",
        ),
        ("Are both bands from America?", "No, one of them is from England [2].", "No"),
        (
            "Which genus is aquatic, Phylica or Nelumbo?",
            "Nelumbo is a genus of aquatic plants with large, showy flowers [1].",
            "Nelumbo",
        ),
        (
            "When was the tracker released?",
            "The tracker was released by the platform team in March 2021 [1].",
            "March 2021",
        ),
        # A parenthetical aside loses to the words outside the brackets.
        ("Where was Salieri born?", "Salieri (born 1750) was born in Legnago [1].", "Legnago"),
        # Words joined by "of" stay one span; a comma ends it.
        (
            "What does the pipeline write?",
            "It writes the Port of Tyne, nightly [1].",
            "Port of Tyne",
        ),
        # The choice's options end at a comma; the left one is the name before "or".
        (
            "Was Brave New Films founded by Robert Greenwald or Alexander Kluge, a director?",
            "Brave New Films was founded by Robert Greenwald [1].",
            "Robert Greenwald",
        ),
        # An option named by part of it is the whole name the sentence gives.
        (
            "Which singer led an alternative rock band, Bob Mould or Hayley Williams?",
            "Robert Arthur Mould (born 1960) is an American musician [1].",
            "Robert Arthur Mould",
        ),
        # "or" between lower-case words offers no names to choose from.
        (
            "Which card is used for payments in online or offline systems?",
            "The Octopus card replaced the Common ticket in 1997 [1].",
            "Octopus",
        ),
        # A date keeps its year across the comma, and a birthdate is a figure, not a name.
        (
            "What is the birthdate of this American actress?",
            "Jennifer Love Hewitt was born on February 21, 1979 [1].",
            "February 21, 1979",
        ),
        ("When was the host born?", "Bob Edwards was born on May 16, 1947 [1].", "May 16, 1947"),
        # Small words inside a title join it; "in" between two names does not.
        (
            "Freddy Krueger appears in what film series?",
            "Nightmare on Elm Street is a film series [1].",
            "Nightmare on Elm Street",
        ),
        (
            "Clan Henderson has a seat at what tower house?",
            "Fordell Castle in Dalgety Bay [1].",
            "Fordell Castle",
        ),
        # The asked kind ends the name it belongs to, when the sentence capitalises it...
        (
            "May Slosson died in what Michigan county?",
            "Ann Arbor is the county seat of Washtenaw County [1].",
            "Washtenaw County",
        ),
        # ...not when it is a common noun before the name.
        (
            "Jamie Muhoberac received credits for what synthpop duo?",
            "He worked with the English synthpop duo Pet Shop Boys [1].",
            "Pet Shop Boys",
        ),
        # A nationality is a demonym, not the first name in the sentence.
        (
            "Son of Paleface starred the comedian of what nationality?",
            "Bob Hope (born 1903) was an American comedian [1].",
            "American",
        ),
        # What two things have in common is a kind, not a name.
        (
            "What sport do Pieter Nys and Fortuna Sittard have in common?",
            "Fortuna Sittard is a football club in Sittard, The Netherlands [1].",
            "football club",
        ),
        # Two sentences run together without a space are two tokens, not one.
        (
            "Daniel Heartz is a professor at which university?",
            "He taught at Berkeley.The University of California is public [1].",
            "Berkeley",
        ),
    ],
)
def test_the_span_is_what_the_sentence_adds_to_the_question(question, sentence, span):
    assert answer_span(question, sentence) == span


def test_a_sentence_that_only_restates_the_question_has_no_span():
    assert (
        span_bounds("Does the tracker listen on a port?", "The tracker listens on a port.") is None
    )
    assert answer_span("Does the tracker listen on a port?", "") == ""


@pytest.mark.parametrize(
    ("question", "span", "marked"),
    [
        ("Von Freyend was adjutant to which field marshal?", "Ernst John von Freyend", True),
        ("Ernst John von Freyend was adjutant to whom?", "Ernst John von Freyend", False),
        ("Dressed to Kill Tour was by Cher in support of what album?", "2014", False),
        ("When did the Dressed to Kill Tour start?", "March 22, 2014", True),
        ("what port is route-planner listening on?", "port 7200", True),
        ("Which country is the Gävle goat in?", "Sweden", True),
        ("How many partitions does telemetry.pings.v2 have?", "48", True),
    ],
)
def test_a_pointer_span_is_marked_only_when_it_adds_what_was_asked(question, span, marked):
    assert marks_answer(question, span) is marked
