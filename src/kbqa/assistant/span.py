"""The span that answers: the words of an answer sentence that the question did not already say.

An answer sentence usually restates the question and adds the answer ("route-planner listens on
port 8443"); the span is that addition, so interfaces can show it first or mark it inside a
quoted sentence, and evals can score it against short reference answers.
"""

from __future__ import annotations

import re

from kbqa.assistant.support import STOPWORDS, strip_citations

_TOKEN = re.compile(r"[\w$`~/+#@%-]+(?:[.:,'’][\w$`~/+#@%-]+)*", re.UNICODE)
_YES_NO = re.compile(r"^\s*(yes|no)\b", re.IGNORECASE)
_CHOICE = re.compile(r"[,:]?\s*([^,:?]+?)\s+or\s+([^,?]+?)\s*\??\s*$", re.IGNORECASE)
# Words that join the parts of one answer ("Port of Tyne", "Sodom and Gomorrah").
_GLUE = frozenset(["of", "the", "a", "an", "and", "de", "von", "van", "der", "la", "le", "&", "-"])
_FIGURE = re.compile(r"\d")
_WANTS_FIGURE = re.compile(r"\b(when|what year|which year|how (many|much|long|old|often))\b", re.I)


def _stem(word: str) -> str:
    """A crude stem so that "listens", "listened" and "listen" (or "write"/"writing") match."""
    word = word.lower().strip("`'’\"").removesuffix("'s").removesuffix("’s")
    for suffix in ("ing", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word.removesuffix("e") if len(word) > 3 else word


def span_bounds(question: str, sentence: str) -> tuple[int, int] | None:
    """(start, end) of the answering span in `sentence`, or None when the sentence adds no
    content word to the question (nothing to mark)."""
    if m := _YES_NO.match(sentence):
        return m.start(1), m.end(1)
    if choice := _choice(question, sentence):
        return choice
    asked = {_stem(w) for w in _TOKEN.findall(question)}
    tokens = list(_TOKEN.finditer(sentence))
    new = [_stem(t.group()) not in asked and t.group().lower() not in STOPWORDS for t in tokens]
    runs = _runs(sentence, tokens, new)
    if not runs:
        return None
    wants_figure = bool(_WANTS_FIGURE.search(question))

    def rank(run: tuple[int, int]) -> tuple:
        text = sentence[tokens[run[0]].start() : tokens[run[1] - 1].end()]
        aside = _in_brackets(sentence, tokens[run[0]].start())
        figure = bool(_FIGURE.search(text))
        named = any(t.group()[:1].isupper() for t in tokens[run[0] : run[1]])
        return (not aside, figure if wants_figure else named or figure, -run[0])

    i, j = max(runs, key=rank)
    return tokens[i].start(), tokens[j - 1].end()


def _runs(sentence: str, tokens: list[re.Match], new: list[bool]) -> list[tuple[int, int]]:
    """Token ranges [i, j) of new words, joined by glue words with no punctuation between."""
    runs, i = [], 0
    while i < len(tokens):
        if not new[i]:
            i += 1
            continue
        j = i + 1
        while j < len(tokens):
            if new[j] and _adjacent(sentence, tokens[j - 1], tokens[j]):
                j += 1
            elif (
                tokens[j].group().lower() in _GLUE
                and j + 1 < len(tokens)
                and new[j + 1]
                and _adjacent(sentence, tokens[j - 1], tokens[j + 1])
            ):
                j += 2
            else:
                break
        runs.append((i, j))
        i = j
    return runs


def _choice(question: str, sentence: str) -> tuple[int, int] | None:
    """For "A or B?" questions, the option the sentence names first."""
    m = _CHOICE.search(question)
    if not m:
        return None
    lowered = sentence.lower()
    found = []
    for option in m.groups():
        option = re.sub(r"^(the|a|an)\s+", "", option.strip(" \"'"), flags=re.I)
        at = lowered.find(option.lower())
        if option and at >= 0:
            found.append((at, at + len(option)))
    return min(found) if found else None


def _adjacent(sentence: str, left: re.Match, right: re.Match) -> bool:
    """No punctuation between two tokens: a comma, a bracket or a sentence end ends a span."""
    return not re.search(r"[,;:()\[\]\"“”]|\.\s", sentence[left.end() : right.start()])


def _in_brackets(sentence: str, at: int) -> bool:
    before = sentence[:at]
    return before.count("(") > before.count(")")


def answer_span(question: str, text: str) -> str:
    """The answering span of an answer's first sentence, citations removed; '' when none."""
    sentence = strip_citations(text)
    bounds = span_bounds(question, sentence)
    return sentence[bounds[0] : bounds[1]] if bounds else ""
