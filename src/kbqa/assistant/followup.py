"""A follow-up ("and how do I check it worked?") searched with its conversation: rewritten into
a standalone question from the last turns. Given a generator (the core passes one only with
`followup_rewrite = "generator"`), it writes the rewrite, short, and it is kept only when it
keeps the new question's words and adds only words from the conversation; otherwise (and by
default: `"words"`, docs/first-hour.md) "and X?" is the previous question with X
for the word X stands in for, and any other follow-up is searched with the previous question's
key words after it. A question that stands on its own is searched as asked. Given the passages'
nearness (`closest`), it witnesses both ways: see nearer()."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from kbqa.assistant.language import note_for
from kbqa.assistant.text import STOPWORDS, content_words, words
from kbqa.types import Answer

log = logging.getLogger(__name__)

Turn = tuple[str, str]  # (question, answer)
TURNS = 2  # the turns a rewrite reads
MAX_WORDS = 40  # a rewrite longer than this is a reply, not a question
_REFERRING_WORDS = (
    "it its that this these those them they their there then one ones he she him same"
)
_REFERRING = frozenset(_REFERRING_WORDS.split())
_OPENERS = re.compile(r"^\s*(and|also|but|so|then|what about|how about|or)\b", re.I)
_NAME = re.compile(r"\w[-_.]\w|\d|(?<!^)(?<![.?!] )\b(?!I\b)[A-Z]")  # billing-svc, v2, Kafka
_KEY_WORDS = 6  # the previous questions' words added to a follow-up
# A follow-up's word stands in for a previous question's word this alike (cosine, the
# packaged embedder): SEV2/SEV1 0.87, v2/v1 0.83, production/staging 0.54; a word and the
# topic it asks about are further apart (escalate/alert 0.42, language/listening 0.41).
STANDS_IN = 0.5
# How much nearer (cosine of the best passage) the previous questions' key words bring a
# question: a follow-up by its words that gains nothing (<= NO_NEARER) is searched as asked, a
# question that stands on its words but gains CLOSER or more is a follow-up. On the four studied
# sets word-detected follow-ups gained -0.08 to +0.61 (5 of 128 at or below 0), the standalone
# questions the words took for follow-ups -0.08 to +0.12 (6 of 13 at or below 0), standalone
# questions after an unrelated turn at most 0.22 (docs/first-hour.md).
NO_NEARER = 0.0
CLOSER = 0.15
Closest = Callable[[str], float]  # a query's best passage's similarity
# Words of a question that say how it is asked, not what about: no use as key words.
_ASKING_WORDS = (
    "many much often long quickly get gets getting see seems have has need want know "
    "tell happen happens way ok okay please mean means"
)
_ASKING = frozenset(_ASKING_WORDS.split())

REWRITE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation. "
    "Keep all of its words and add only words from the conversation. Reply with the one "
    "question and nothing else.\n"
    "Example: after 'How do I restart the api pods?', the question 'and how long does it "
    "take?' becomes 'how long does it take to restart the api pods?'"
)


def is_followup(question: str) -> bool:
    """Leans on the conversation: opens with "and", "what about"…, refers back ("it", "that",
    "them"), or has one word of its own that names nothing ("when should I escalate?", not
    "what does billing-svc do?")."""
    if _OPENERS.match(question) or _referring(question):
        return True
    own = content_words(question)
    return not own or (len(own) == 1 and not _NAME.search(question))


# Where a referring word refers to nothing before the question: a word in capitals is a name
# ("IT", the department), "is there" (there is), "check that Tailscale is…" (that opening a
# clause: a name, an article or a pronoun after it; "that store" and "that?" still refer back).
_NOT_REFERRING = re.compile(
    r"\b[A-Z]{2,}\b"
    r"|(?i:\b(?:is|are|was|were|be)\s+there\b|\bthere\s+(?:is|are|was|were|be)\b)"
    r"|\bthat\s+(?=[A-Z]|(?:the|a|an|my|our|your|their|I|we|you|he|she|it|they)\b)"
)


def _referring(question: str) -> bool:
    return bool(_REFERRING & set(words(_NOT_REFERRING.sub(" ", question))))


def standalone(
    question: str,
    history: Sequence[Turn] = (),
    generator=None,
    embedder=None,
    closest: Closest | None = None,
) -> str:
    """The question to search for: `question` itself unless it is a follow-up of `history`.
    `embedder` finds the word of the previous question that a follow-up's word stands in for
    ("and a SEV2?": SEV1), see elliptic() and with_key_words(). With `closest`, the passages'
    nearness is a second witness (nearer())."""
    turns = [t for t in history if t and t[0]][-TURNS:]
    if not turns:
        return question
    follows = is_followup(question)
    if closest is not None:
        gain = nearer(question, turns, closest, embedder)
        if (follows and gain <= NO_NEARER) or (not follows and gain >= CLOSER):
            log.info("follow-up by its words %s, the conversation's words gain %.2f", follows, gain)
            follows = not follows
    if not follows:
        return question
    if generator is not None and getattr(generator, "name", "") != "echo":
        rewrite = _generated(question, turns, generator)
        if rewrite and checked(rewrite, question, turns):
            return rewrite
        log.info("follow-up rewrite %r failed the check; searching with key words", rewrite)
    return elliptic(question, turns, embedder) or with_key_words(question, turns, embedder)


def nearer(question: str, turns: Sequence[Turn], closest: Closest, embedder=None) -> float:
    """How much nearer the previous questions' key words bring the question's best passage.
    A witness both ways: a question whose words refer back but whose passages the conversation
    brings no nearer refers to nothing before it ("Is it OK to check Grafana from my phone?"
    after a question about laptops); one whose own words match its passage poorly and the
    conversation's much better leans on it ("what if the link has expired?" after a question
    about the onboarding invite)."""
    keyed = with_key_words(question, turns, embedder)
    return closest(keyed) - closest(question) if keyed != question else 0.0


def elliptic(question: str, turns: Sequence[Turn], embedder=None) -> str:
    """The previous question again with the follow-up's one word for the word it stands in for
    (see STANDS_IN): "and a SEV2?" after "How quickly must a SEV1 page be acknowledged?" is
    "How quickly must a SEV2 page be acknowledged?". Only for a follow-up that opens with
    "and", "what about"… and says one word of its own; "" otherwise."""
    own = sorted(content_words(question) - _ASKING)
    if embedder is None or not turns or len(own) != 1 or not _OPENERS.match(question):
        return ""
    asked = turns[-1][0]
    theirs = [w for w in dict.fromkeys(words(asked)) if w not in STOPWORDS and len(w) > 1]
    if not theirs or own[0] in theirs:  # a word said again stands in for nothing
        return ""
    vectors = embedder.embed(own + theirs)
    alike = vectors[1:] @ vectors[0]
    best = int(alike.argmax())
    said = re.search(rf"(?<![\w-]){re.escape(own[0])}(?![\w-])", question, re.I)
    if alike[best] < STANDS_IN or said is None:
        return ""
    word = re.compile(rf"(?<![\w-]){re.escape(theirs[best])}(?![\w-])", re.I)
    return word.sub(lambda _: said.group(0), asked.strip(), count=1)


def checked(rewrite: str, question: str, turns: Sequence[Turn]) -> bool:
    """The rewrite is a question that keeps every word of the question that carries meaning and
    adds only words of the conversation (or words that carry none), within MAX_WORDS, and at
    least one that carries meaning: "How do I stop one?" for "how do I stop one?" says no more
    than the question did."""
    said = words(rewrite)
    if not said or len(said) > MAX_WORDS:
        return False
    if not _stems(content_words(rewrite)) - _stems(content_words(question)):
        return False
    if not rewrite.rstrip().endswith("?"):  # an answer copied from the history, not a question
        return False
    history = words(" ".join(f"{q} {a}" for q, a in turns))
    allowed = _stems([*history, *words(question), *STOPWORDS])
    kept = _stems(said)
    # Words that say how it is asked ("happen", "get") may go: the rewrite says what about.
    required = _stems(content_words(question) - _ASKING)
    return required <= kept and kept <= allowed


def _stems(found) -> set[str]:
    # "rotating" is "rotate" said another way: words compare by their first five letters.
    return {w[:5] for w in found}


def with_key_words(question: str, turns: Sequence[Turn], embedder=None) -> str:
    """The question, then the words of the previous questions that it does not say itself
    (the last question's first). With `embedder`, less any that a word of the question stands
    in for: "and a SEV2?" after "How quickly must a SEV1 page be acknowledged?" asks about a
    SEV2 page, not a SEV1 one."""
    own, keys = content_words(question), []
    for asked, _ in reversed(turns):
        for word in words(asked):
            if word in STOPWORDS or word in _ASKING or len(word) < 2 or word in own:
                continue
            if word in keys:
                continue
            keys.append(word)
    keys = keys[:_KEY_WORDS]
    if embedder is not None:
        keys = _not_replaced(sorted(own - _ASKING), keys, embedder)
    return f"{question.strip()} ({' '.join(keys)})" if keys else question


def _not_replaced(own: list[str], keys: list[str], embedder) -> list[str]:
    """`keys` less each one that a word of `own` stands in for: the key word nearest to it,
    when they are at least STANDS_IN alike (SEV2 for SEV1, production for staging)."""
    if not own or not keys:
        return keys
    vectors = embedder.embed(own + keys)
    alike = vectors[: len(own)] @ vectors[len(own) :].T
    replaced = {int(row.argmax()) for row in alike if row.max() >= STANDS_IN}
    return [key for n, key in enumerate(keys) if n not in replaced]


def _generated(question: str, turns: Sequence[Turn], generator) -> str:
    lines = []
    for asked, answered in turns:
        lines += [f"User: {asked}", f"Assistant: {' '.join(answered.split()[:60])}"]
    prompt = "\n".join([*lines, f"User: {question}", "", "Standalone question:"])
    messages = [{"role": "system", "content": REWRITE_PROMPT}, {"role": "user", "content": prompt}]
    try:
        reply = generator.generate(messages, max_new_tokens=MAX_WORDS + 8)
    except Exception:  # a rewrite is an improvement: without one the question still goes on
        log.warning("the follow-up rewrite failed", exc_info=True)
        return ""
    first = (reply or "").strip().splitlines()[0] if (reply or "").strip() else ""
    return first.removeprefix("Standalone question:").strip().strip('"').strip()


ONLY_SOURCES = "; searched only the source "  # an abstention's reason, where sources were named
# A --source that matched nothing, said to an asker who sees every document (the CLI), and to
# one limited to some (a token, a Slack channel), whom the source may name what they may not see.
NO_SOURCE = "no document matches the source"
NO_SOURCE_SEEN = "no document you may see matches the source"
NOTHING_SEARCHED = "Nothing was searched."


def matched_nothing(reason: str) -> bool:
    """Whether an abstention's reason is a source that matched no document."""
    return reason.startswith((NO_SOURCE, NO_SOURCE_SEEN))


def told(
    answer: Answer,
    question: str,
    sources: Sequence[str] = (),
    embedder: str = "",
    limited: bool = True,
) -> Answer:
    """`answer` (made for the searched question) as the asker is told it: the asked question
    back in `question` and the searched one in `searched`, a note when the question is not in
    the embedder's language, and, when `sources` matched nothing, that (`limited`: the asker
    may see only some documents)."""
    changes: dict = {"note": note_for(question, embedder, [h.text for h in answer.hits])}
    if answer.question != question:
        changes.update(question=question, searched=answer.question)
    named = ", ".join(repr(s) for s in sources)
    if sources and answer.abstained and not answer.hits:
        # Not "I couldn't find this": nothing was looked through; the why says which source.
        changes["text"] = NOTHING_SEARCHED
        changes["reason"] = f"{NO_SOURCE_SEEN if limited else NO_SOURCE} {named}"
    elif sources and answer.abstained:
        changes["reason"] = f"{answer.reason}{ONLY_SOURCES}{named}"
    return replace(answer, **changes)


def told_stream(
    items: Iterator,
    question: str,
    sources: Sequence[str] = (),
    embedder: str = "",
    limited: bool = True,
) -> Iterator:
    """told() on the last item (the Answer) of a streamed answer."""
    for item in items:
        yield told(item, question, sources, embedder, limited) if isinstance(item, Answer) else item
