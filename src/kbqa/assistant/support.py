"""Is a sentence supported by the passage it cites? The free answer style's check
(answer_style = "free"); the pointer style delivers the passages' own units instead
(assistant/pointed.py, assistant/signals.py).

No entailment model ships offline, so support is approximated by these signals, all of which
must clear their threshold (settings: support_min_overlap, support_min_similarity):
- overlap: the share of the sentence's content words (numbers and identifiers included) that
  occur in the passage; a copied or lightly rephrased sentence scores near 1, an invented
  instruction far lower;
- similarity: cosine between the sentence's and the passage's embeddings, which catches a
  sentence that reuses the passage's words to say something off-topic;
- and every number or code in the sentence (a port, a date, an amount), and every name it
  adds (a capitalised word the question did not use), must occur in the passage: a changed
  figure or a swapped name is the wrong answer that overlap alone lets through;
- the question's words that the sentence repeats must mostly be in the passage: "X played the
  character who took over the factory [1]" restates the question's premise about a passage
  that never mentions the factory;
- a trait given to both ("Both X and Y are English rock bands", "X and Y have bulbous plants
  in common", "Both mines are gold mines" asked of two mines) must be said of each, in the part
  of the passage about each;
- a comparison must agree with its own figures ("more countries (70) than Y (120)"), and a
  name must not take the place of the one the passage gives for the same words ("Go Ara stars
  as a talent manager" where the passage says "Park Yong-woo stars as a talent manager").
A short answer ("2006", "Allan Dwan") has little of its own to compare, so its similarity is
read with the question in front of it ("question + answer" against the passage), and an answer
that picks one of the question's own alternatives ("X or Y?" -> "Y") counts as new content.
The thresholds were tuned on labelled examples: tools/tune_support.py.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

from kbqa.assistant.text import (  # noqa: F401 - the words the checks below are made of
    STOPWORDS,
    citations,
    content_words,
    split_sentences,
    strip_citations,
    words,
)


def passage_words(passage: str) -> set[str]:
    """The passage's words, and the parts of joined ones ("1997.mark", "api/v2"), so a word at
    the seam of two badly joined sentences still counts."""
    return set(words(passage)) | set(re.findall(r"[a-z0-9]+", passage.lower()))


def overlap(sentence: str, passage: str, question: str = "") -> float:
    """Share of the sentence's new content words (those not already in the question) that the
    passage contains. A sentence that only restates the question has none and scores 0; a
    short one that picks a few of the question's words (one of its alternatives) is scored on
    those words."""
    mine, asked = content_words(sentence), content_words(question)
    wanted = mine - asked
    if not wanted:
        if not mine or len(mine) > len(asked) / 2:
            return 0.0
        wanted = mine
    return len(wanted & passage_words(passage)) / len(wanted)


_UNITS = frozenset(
    {"second", "minute", "hour", "day", "week", "month", "year", "percent", "gb", "mb", "ms"}
)


def _quantities(text: str) -> set[str]:
    """ "15 weeks", "30 days": a number with the unit after it (singular)."""
    tokens = words(text)
    out = set()
    for number, unit in itertools.pairwise(tokens):
        unit = unit.removesuffix("s")
        if number.replace(",", "").replace(".", "").isdigit() and unit in _UNITS:
            out.add(f"{number} {unit}")
    return out


def missing_figures(sentence: str, passage: str) -> set[str]:
    """Numbers and codes (tokens with a digit) in the sentence that the passage lacks, and
    quantities whose unit it changes ("15 weeks" where the passage says "15 days"): a changed
    port, date, amount or duration is the wrong answer that word overlap alone lets through."""
    have = passage_words(passage)
    missing = {w for w in words(sentence) if any(ch.isdigit() for ch in w) and w not in have}
    return missing | (_quantities(sentence) - _quantities(passage))


# A capitalised word past the sentence's first is a name; "I'm", "I've" and "OK" are not.
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b(?!I['’]|OK\b)[A-Z][\w'-]*[A-Za-z0-9]")


def missing_names(
    sentence: str,
    passage: str,
    question: str = "",
    elsewhere: str = "",
    question_names: bool = False,
) -> set[str]:
    """Capitalised words (names, past the sentence's first word) that the passage lacks: "the
    narrator was actually Richard Boone" against a cast list without him. A name taken from
    the question counts too: "Kevin Bookout played in the Ohio Valley Conference" cited to a
    passage that never names him is the question's premise, not the passage's word — unless
    another retrieved passage (`elsewhere`) names him: then he is the bridge of a two-passage
    question ("Jules Flandrin was a contemporary of Georges Rouault", cited to Rouault's page,
    with Flandrin's page beside it) — or `question_names` is set: then a name that is all the
    question's words never counts (the answerer sets it when retrieval is confident, where a
    passage that says "He won Best Actor …" is about the question's man)."""
    have = passage_words(passage)
    found = {
        re.sub(r"['’]s$", "", m.group(0).lower()).strip("'’-")
        for m in _NAME.finditer(sentence.strip())
        if not _spelled_out(m.group(0), passage)
    }
    missing = {n for n in found - STOPWORDS if not all(_has(w, have) for w in words(n))}
    if question_names:
        asked = set(words(question))
        missing = {n for n in missing if not set(words(n)) <= asked}
    if elsewhere:
        asked, other = set(words(question)), passage_words(elsewhere)
        missing = {n for n in missing if not set(words(n)) <= asked & other}
    return missing


def _has(word: str, have: set[str]) -> bool:
    """The passage has the word, or its singular: "Americans" where it says "American"."""
    return word in have or (len(word) > 3 and word.endswith("s") and word[:-1] in have)


def _spelled_out(name: str, passage: str) -> bool:
    """An acronym whose words the passage spells out: "PR" for "pull request", "RPO" for
    "recovery point objective"."""
    if not (2 <= len(name) <= 5 and name.isalpha() and name.isupper()):
        return False
    initials = "".join(w[0] for w in re.findall(r"[a-z]+", passage.lower()))
    return name.lower() in initials  # consecutive words with those initials


# Words that a restated premise or a "both …" sentence brings along without adding a claim.
_FRAME = frozenset(
    {"have", "has", "had", "known", "common", "share", "shared", "both", "each", "alike", "type"}
    | {"kind"}
)

MIN_PREMISE = 0.4  # share of the question's repeated words the passage must hold (see below)


def premise(sentence: str, passage: str, question: str, elsewhere: str = "") -> float:
    """Share of the question's content words repeated in the sentence that the passage holds;
    1.0 when the sentence repeats fewer than three. Answers that restate a premise the
    passage never mentions score low: in four manual reads of 50 answers (tests/data), every
    sentence below 0.4 was unsupported and every supported one was at 0.5 or above. A name of
    the question that another retrieved passage (`elsewhere`) holds counts as held: the
    bridge of a two-passage question (see `missing_names`)."""
    repeated = (content_words(sentence) & content_words(question)) - _FRAME
    if len(repeated) < 3:
        return 1.0
    have = passage_words(passage)
    if elsewhere:
        names = set(words(" ".join(re.findall(r"\b[A-Z][\w'-]*", question))))
        have |= names & passage_words(elsewhere)
    return sum(_has(w, have) for w in repeated) / len(repeated)


# A name: capitalised words (or figures) joined by spaces, commas or a particle ("City of
# Onkaparinga ATP Challenger", "Happy Valley, South Australia").
_NAME_RUN = re.compile(
    r"[A-Z0-9][\w'’.-]*(?:(?:,?\s+|\s+(?:of|the|de|du|van|von|la|le|del|da)\s+)[A-Z0-9][\w'’.-]*)*"
)
_BOTH = re.compile(r"\b(?:both|in common|each|alike)\b", re.IGNORECASE)


def _named(sentence: str, passage: str, question: str) -> list[str]:
    """Names in the sentence that come from the question and that the passage spells the same."""
    asked, out = set(words(question)), []
    for match in _NAME_RUN.finditer(sentence):
        parts = match.group(0).strip(" .'’").split()
        while parts and parts[0].lower() in STOPWORDS | _FRAME:
            parts = parts[1:]  # "Both Quietdrive" is Quietdrive
        significant = [w for w in words(" ".join(parts)) if w not in STOPWORDS]
        if (
            not significant
            or all(w.isdigit() for w in significant)
            or not set(significant) <= asked
        ):
            continue
        if re.search(rf"(?<!\w){re.escape(parts[0])}", passage) and " ".join(parts) not in out:
            out.append(" ".join(parts))
    return out


def _stretches(names: list[str], passage: str) -> dict[str, str]:
    """The part of the passage about each name: from the sentence it opens to the next such
    name's. A name first met inside a sentence (an object, not a subject) has none."""
    starts = []
    for name in names:
        found = [passage.find(w) for w in name.split() if w.lower() not in STOPWORDS]
        found = [i for i in found if i >= 0]
        if not found:
            continue
        # The whole name where the passage has it: "Ruth Mine" is not the "Mine" of "Hedley
        # Mascot Mine" before it.
        start = passage.find(name) if name in passage else min(found)
        lead = re.split(r"[.!?\n]", passage[:start])[-1]
        if len(lead.split()) <= 3:  # "The 2015 City of …" opens its sentence
            starts.append((start, name))
    starts.sort()
    ends = [s for s, _ in starts[1:]] + [len(passage)] if starts else []
    return {name: passage[start:end] for (start, name), end in zip(starts, ends, strict=True)}


_THEY = re.compile(r"\b(?:they|them|the two)\b", re.IGNORECASE)


def missing_traits(sentence: str, passage: str, question: str = "") -> set[str]:
    """Words of a trait the sentence gives to two or more of the question's names ("both",
    "in common", "each") that the passage does not say of one of them: "english (of
    Quietdrive)" for "Both Quietdrive and Supergrass are English rock bands" against a passage
    calling only Supergrass English. A sentence that names fewer than two ("Both mines are gold
    mines in British Columbia", "… and they have had numerous roles") is read with the
    question's names when the question asks what they share."""
    if not (_BOTH.search(sentence) or (_BOTH.search(question) and _THEY.search(sentence))):
        return set()
    stretches = _stretches(_named(sentence, passage, question), passage)
    if len(stretches) < 2 and _BOTH.search(question):
        stretches = _stretches(_named(question, passage, question), passage)
    if len(stretches) < 2:
        return set()
    named = set(words(" ".join(stretches)))
    for run in _NAME_RUN.finditer(sentence):  # "Paul Vincent Collins" is Paul Collins
        if set(words(run.group(0))) & named:
            named |= set(words(run.group(0)))
    trait = content_words(sentence) - named - content_words(question) - _FRAME
    out = set()
    for name, stretch in stretches.items():
        have = passage_words(stretch)
        out |= {f"{w} (of {name})" for w in trait if not _has(w, have) and not _stem_in(w, have)}
    return out


_MORE = re.compile(
    r"\b(?:more|larger|greater|higher|bigger|longer|taller|heavier|older)\b(?!\s+than)", re.I
)
_LESS = re.compile(r"\b(?:fewer|less|smaller|lower|shorter|younger)\b(?!\s+than)", re.I)
_FIGURE = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?(?![\w])")


def reversed_comparison(sentence: str) -> set[str]:
    """A comparison its own figures contradict: "X operates in more countries (70) than Y
    (120)". Read only in the plain shape, a comparative with one figure before its "than" and
    one after ("more than 70" is a bound, not a comparison; years are left alone)."""
    head, than, tail = strip_citations(sentence).partition(" than ")
    if not than:
        return set()
    more, less = _MORE.search(head), _LESS.search(head)
    if bool(more) == bool(less):
        return set()
    before, after = _FIGURE.findall(head[(more or less).start() :]), _FIGURE.findall(tail)
    if len(before) != 1 or len(after) != 1:
        return set()
    a, b = (float(x.replace(",", "")) for x in (before[0], after[0]))
    if any(1000 <= x <= 2100 and x.is_integer() for x in (a, b)):
        return set()
    if (more and a < b) or (less and a > b):
        return {f"{before[0]} {(more or less).group(0).lower()} than {after[0]}"}
    return set()


# Words after a name that do not make it the subject of what follows ("X and was featured").
_JOINS = frozenset(
    {"and", "or", "but", "which", "who", "whom", "whose", "that", "with", "as", "while", "when"}
)
_PRONOUNS = frozenset(["it", "he", "she", "they", "his", "her", "its", "their", "this", "these"])
_TRAILING_NAME = re.compile(r"((?:[A-Z][\w'’-]*[\s-]+){0,3}[A-Z][\w'’-]*)$")


def _name_ending(clause: str, passage: str) -> str | None:
    """The name that ends `clause` (the passage's text before some words), if any. One
    capitalised word that opens its sentence ("Launched in support of …") is a name only if
    the passage also capitalises it mid-sentence; a pronoun ("It was founded …") names nobody."""
    found = _TRAILING_NAME.search(clause)
    if not found or not set(words(found.group(1))) - STOPWORDS - _PRONOUNS:
        return None
    name = found.group(1)
    opens = clause.strip() == name and " " not in name
    if opens and not re.search(rf"[a-z,]\s+{re.escape(name)}\b", passage):
        return None
    return name


def swapped_names(sentence: str, passage: str, words_after: int = 4) -> set[str]:
    """A name in the sentence put where the passage has another one: "Go Ara stars as a
    talent manager" against "Park Yong-woo stars as a talent manager". Each name's next
    `words_after` words are looked up in the passage; where every place they occur has a
    different name right before them (in the same clause), the name is swapped."""
    out = set()
    for match in _NAME_RUN.finditer(sentence):
        name = match.group(0).strip(" .,'’")
        mine = set(words(name)) - STOPWORDS
        after = re.findall(r"[\w'’-]+", sentence[match.end() :])[:words_after]
        if (
            not mine
            or len(after) < words_after
            or after[0].lower() in _JOINS
            or not {w.lower() for w in after} - STOPWORDS
        ):
            continue
        others, own = set(), False
        for found in re.finditer(r"\W+".join(map(re.escape, after)), passage):
            clause = re.split(r"[.!?;:,()\n]", passage[: found.start()])[-1].rstrip()
            other = _name_ending(clause, passage)
            if other is None or any(_has(w, passage_words(clause)) for w in mine):
                own = True  # said of our name, or of nobody named
            else:
                others.add(other)
        if others and not own:
            out.add(f"{name} (the passage says {' / '.join(sorted(others))})")
    return out


def _stem_in(word: str, have: set[str]) -> bool:
    """A longer word whose stem the passage uses: "director" where it says "direct"."""
    return len(word) > 5 and any(h.startswith(word[: max(5, len(word) - 3)]) for h in have)


@dataclass(frozen=True)
class Support:
    overlap: float
    similarity: float
    supported: bool
    missing: frozenset[str] = frozenset()  # figures, names and traits the passage lacks
    premise: float = 1.0  # share of the question's repeated words the passage holds


def check(
    question: str,
    sentences: list[str],
    passages: list[str],
    sentence_vectors: np.ndarray,
    passage_vectors: np.ndarray,
    min_overlap: float,
    min_similarity: float,
    asked_vectors: np.ndarray | None = None,
    elsewhere: str = "",
    question_names: bool = False,
) -> list[Support]:
    """Support of sentence i by passage i (pairs, not a matrix). `asked_vectors[i]`, if given,
    embeds "question + sentence i": the similarity is the better of the two readings.
    `elsewhere` is every retrieved passage's text, where a name from the question may be
    found, and `question_names` lets the question's own names go unmatched (see
    `missing_names`)."""
    out = []
    for i, (sentence, passage) in enumerate(zip(sentences, passages, strict=True)):
        lexical = overlap(sentence, passage, question)
        similarity = float(sentence_vectors[i] @ passage_vectors[i])
        if asked_vectors is not None:
            similarity = max(similarity, float(asked_vectors[i] @ passage_vectors[i]))
        missing = frozenset(
            missing_figures(sentence, passage)
            | missing_names(sentence, passage, question, elsewhere, question_names)
            | missing_traits(sentence, passage, question)
            | reversed_comparison(sentence)
            | swapped_names(sentence, passage)
        )
        restated = premise(sentence, passage, question, elsewhere)
        supported = (
            lexical >= min_overlap
            and similarity >= min_similarity
            and not missing
            and restated >= MIN_PREMISE
        )
        out.append(Support(lexical, similarity, supported, missing, restated))
    return out


def near_duplicate(sentence: str, kept: list[str], threshold: float = 0.8) -> bool:
    """True when the sentence repeats one already kept (word-set Jaccard)."""
    mine = set(words(sentence))
    for other in kept:
        theirs = set(words(other))
        if mine and theirs and len(mine & theirs) / len(mine | theirs) >= threshold:
            return True
    return False
