"""Follow-ups searched with their conversation (assistant/followup.py)."""

from kbqa.assistant.followup import checked, is_followup, standalone

FIRST = ("How do I rotate the staging database password?", "Run vault write … [1]")


class Scripted:
    """A generator that answers every prompt with one reply, and records the prompts."""

    name = "scripted"

    def __init__(self, reply: str):
        self.reply, self.prompts = reply, []

    def generate(self, messages, max_new_tokens=96):
        self.prompts.append(messages)
        return self.reply


def test_a_standalone_question_is_searched_as_asked():
    question = "what port is route-planner listening on?"
    assert not is_followup(question)
    assert standalone(question, [FIRST], Scripted("something else entirely?")) == question
    assert standalone("and how do I check it worked?", []) == "and how do I check it worked?"
    # Short, but each names what it is about.
    for short in ("What does billing-svc do?", "How do I declare an incident?", "Can I use Kafka?"):
        assert not is_followup(short), short
    assert is_followup("when should I escalate?")


def test_a_follow_up_without_a_generator_gets_the_previous_questions_key_words():
    searched = standalone("and how do I check it worked?", [FIRST])
    assert searched.startswith("and how do I check it worked?")
    added = searched.removeprefix("and how do I check it worked? ").strip("()").split()
    assert {"rotate", "staging", "database", "password"} <= set(added)


def test_the_generators_rewrite_is_kept_when_it_keeps_the_words_and_adds_only_the_historys():
    good = "how do I check that rotating the staging database password worked?"
    generator = Scripted(good)
    assert standalone("and how do I check it worked?", [FIRST], generator) == good
    assert "rotate the staging database password" in generator.prompts[0][-1]["content"]


def test_a_rewrite_may_drop_words_that_only_say_how_it_is_asked():
    # Qwen2.5-Coder-1.5B's rewrite of this follow-up, word for word.
    question = "how often does that happen automatically?"
    rewrite = "How often does the staging database password rotate automatically?"
    assert checked(rewrite, question, [FIRST])
    assert standalone(question, [FIRST], Scripted(rewrite)) == rewrite


def test_a_rewrite_that_adds_words_or_drops_the_questions_falls_back():
    question = "and how do I check it worked?"
    invented = "how do I check the production Kafka cluster worked?"  # words from nowhere
    dropped = "how do I rotate the staging database password?"  # "check", "worked" gone
    # Qwen2.5-Coder-1.5B once answered instead, with words of the history only.
    answered = "Run vault write to rotate the staging database password and check it worked."
    for reply in (invented, dropped, answered, "", "x " * 80):
        assert not checked(reply, question, [FIRST])
        searched = standalone(question, [FIRST], Scripted(reply))
        assert searched.startswith(question + " (")


def test_the_core_searches_the_follow_up_and_says_what_it_searched(kb, docs):
    kb.ingest([docs])
    answer = kb.ask("and how do I check it worked?", history=[FIRST])
    assert answer.question == "and how do I check it worked?"
    assert answer.searched.startswith("and how do I check it worked? (")
    assert any("runbooks/db.md" in h.uri for h in answer.hits[:1])
    assert answer.to_dict()["searched"] == answer.searched
    plain = kb.ask("How do I rotate the staging database password?", history=[FIRST])
    assert plain.searched == ""
