"""The span that answers: the words of an answer sentence that the question did not already say.

An answer sentence usually restates the question and adds the answer ("route-planner listens on
port 8443"); the span is that addition, so interfaces can show it first or mark it inside a
quoted sentence, and evals can score it against short reference answers.
"""

from __future__ import annotations

import re

from kbqa.assistant.support import STOPWORDS, strip_citations

# A word, and its joined parts ("2.3.1", "api/v2", "D.W"), but not two sentences run together
# without a space ("Berkeley.The University…", as scraped text often has them).
_TOKEN = re.compile(r"[\w$`~/+#@%-]+(?:(?:[:,'’]|\.(?![A-Z][a-z]))[\w$`~/+#@%-]+)*", re.UNICODE)
_YES_NO = re.compile(r"^\s*(yes|no)\b", re.IGNORECASE)
_OR = re.compile(r"\s+or\s+", re.IGNORECASE)
# Words that join the parts of one answer ("Port of Tyne", "Sodom and Gomorrah").
_GLUE = frozenset(["of", "the", "a", "an", "and", "de", "von", "van", "der", "la", "le", "&", "-"])
# ...and, between two capitalised words only, the small words inside a title or a place's name
# ("Nightmare on Elm Street", "Lord of the Rings", "Newcastle upon Tyne"); not "in" or "at",
# which more often join a name to its place ("Fordell Castle in Dalgety Bay").
_NAME_GLUE = _GLUE | {"on", "upon", "del", "della", "di", "da", "du"}
_FIGURE = re.compile(r"\d")
# "What do X and Y have in common?", "are both considered what?": a kind, not a name.
_WANTS_KIND = re.compile(r"\bin common\b|\b(both|considered|share)\b[^?]*\bwhat\s*\?*\s*$", re.I)
# The words after "what"/"which" name the answer's kind ("what Michigan county", "which river").
_ASKED_KIND = re.compile(r"\b(?:what|which)\s+((?:[\w-]+\s+){0,2}[\w-]+)", re.I)
_NOT_KIND = STOPWORDS | {"other", "type", "kind", "sort"}
_NATIONALITY = re.compile(r"\b(nationality|language)\b", re.I)
_DEMONYM = re.compile(r"^[A-Z][a-z]+(?:an|ish|ese|ian|ch)$")
_WANTS_FIGURE = re.compile(
    r"\b(when|what year|which year|how (many|much|long|old|often)|(birth)?date|birthday)\b",
    re.I,
)


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
    new = [_stem(t.group()) not in asked and _content(t.group()) for t in tokens]
    runs = _runs(sentence, tokens, new)
    if not runs:
        return None
    wants_figure = bool(_WANTS_FIGURE.search(question))
    wants_kind = bool(_WANTS_KIND.search(question))
    nationality = bool(_NATIONALITY.search(question))
    kind = {
        _stem(w)
        for m in _ASKED_KIND.finditer(question)
        for w in m.group(1).split()
        if w.lower() not in _NOT_KIND
    }

    def beside_kind(run: tuple[int, int]) -> bool:
        # A name that ends with the asked kind: "…the county seat of Washtenaw County" for
        # "what Michigan county?". Not "the English synthpop duo Pet Shop Boys" for "what
        # synthpop duo?": a kind in lower case is not part of the name before it.
        i, j = run
        return (
            j < len(tokens)
            and _stem(tokens[j].group()) in kind
            and tokens[j].group()[:1].isupper()
            and _adjacent(sentence, tokens[j - 1], tokens[j])
            and all(t.group()[:1].isupper() or t.group() in _GLUE for t in tokens[i:j])
        )

    def rank(run: tuple[int, int]) -> tuple:
        text = sentence[tokens[run[0]].start() : tokens[run[1] - 1].end()]
        aside = _in_brackets(sentence, tokens[run[0]].start())
        figure = bool(_FIGURE.search(text))
        named = any(t.group()[:1].isupper() for t in tokens[run[0] : run[1]])
        demonym = any(_DEMONYM.match(t.group()) for t in tokens[run[0] : run[1]])
        if nationality:
            fits = demonym
        elif run[1] - run[0] == 1 and demonym:
            fits = False  # "the English synthpop duo Pet Shop Boys": an adjective, not the answer
        elif wants_figure:
            fits = figure
        elif wants_kind:
            fits = not named
        else:
            fits = named or figure
        return (not aside, fits, beside_kind(run), -run[0])

    i, j = max(runs, key=rank)
    if beside_kind((i, j)):
        j += 1  # the kind is part of the name: "Washtenaw County", "the Genesee River"
    return tokens[i].start(), tokens[j - 1].end()


def _content(token: str) -> bool:
    # "May" capitalised is the month (or a name), not the verb: "born on May 16, 1947".
    return token.lower() not in STOPWORDS or token == "May"


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
            elif after := _glued(sentence, tokens, new, j):
                j = after
            else:
                break
        runs.append((i, j))
        i = j
    return runs


def _glued(sentence: str, tokens: list[re.Match], new: list[bool], j: int) -> int:
    """The index after the new word that one or two glue words at `j` join to the run before
    (0 when they join nothing): "Port of Tyne", "Lord of the Rings", "Nightmare on Elm Street"."""
    for k in (j + 1, j + 2):
        if k >= len(tokens) or not new[k] or not _adjacent(sentence, tokens[j - 1], tokens[k]):
            continue
        left, right = tokens[j - 1].group()[:1], tokens[k].group()[:1]
        if left.isupper() != right.isupper() and not (left.isdigit() or right.isdigit()):
            continue  # "seat of Washtenaw", "capital of France": the name stands alone
        glue = _NAME_GLUE if left.isupper() else _GLUE
        if all(t.group().lower() in glue for t in tokens[j:k]):
            return k + 1
    return 0


def _options(question: str) -> list[str]:
    """The two alternatives of an "A or B?" question, or [] when it offers none:
    "Which genus is aquatic, Phylica or Nelumbo?", "Was it founded by Robert Greenwald or
    Alexander Kluge, a German director?"."""
    parts = _OR.split(question.strip().rstrip("?"), maxsplit=1)
    if len(parts) != 2:
        return []
    before, after = parts
    right = re.split(r"[,;:?(]", after)[0].split()
    lead = _capitalised(right, from_end=False)
    right = right[:lead] if lead else right
    left = re.split(r"[,;:(]", before)[-1].split()
    tail = _capitalised(left, from_end=True)
    if tail:
        left = left[-tail:]
    elif len(re.split(r"[,;:(]", before)) == 1:
        left = left[-len(right) :]  # no comma to start it: as long as the other option
    return [" ".join(words).strip(" \"'“”") for words in (left, right) if words]


def _capitalised(words: list[str], from_end: bool) -> int:
    """How many words at one end of `words` form a name: capitalised, or glue between."""
    order = list(reversed(words)) if from_end else words
    n = named = 0
    for word in order:
        if word[:1].isupper() and word.lower() not in STOPWORDS - {"the", "a", "an"}:
            n += 1
            named = n
        elif word.lower() in _NAME_GLUE and n:
            n += 1
        else:
            break
    return named


def _choice(question: str, sentence: str) -> tuple[int, int] | None:
    """For "A or B?" questions, the option the sentence names first: whole, else (for names)
    by one of its capitalised words, widened to the name around it ("Mould" in "Robert Arthur
    Mould" for the option "Bob Mould")."""
    options = [re.sub(r"^(the|a|an)\s+", "", o, flags=re.I) for o in _options(question)]
    lowered = sentence.lower()
    whole = [(at, at + len(o)) for o in options if o and (at := lowered.find(o.lower())) >= 0]
    if whole:
        return min(whole)
    if not all(o[:1].isupper() for o in options):
        return None  # "online or offline systems": not a choice between names
    parts = []
    for option in options:
        for word in option.split():
            word = word.strip("\"'“”")
            m = re.search(rf"\b{re.escape(word)}\b", sentence) if len(word) > 2 else None
            if m and word[:1].isupper():
                parts.append(_name_around(sentence, m.start(), m.end()))
                break
    return min(parts) if parts else None


def _name_around(sentence: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) to the run of capitalised words it sits in."""
    for m in re.finditer(r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*", sentence):
        if m.start() <= start and end <= m.end():
            return m.start(), m.end()
    return start, end


# A comma inside a date ("February 21, 1979") does not end a span.
_DATE_COMMA = re.compile(r"^,\s*$")


def _adjacent(sentence: str, left: re.Match, right: re.Match) -> bool:
    """No punctuation between two tokens: a comma, a bracket or a sentence end ends a span,
    except the comma between a date's day and its year."""
    between = sentence[left.end() : right.start()]
    if _DATE_COMMA.match(between) and re.fullmatch(r"\d{1,2}", left.group()):
        return bool(re.fullmatch(r"\d{4}", right.group()))
    return not re.search(r"[,;:()\[\]\"“”]|\.\s", between)


def _in_brackets(sentence: str, at: int) -> bool:
    before = sentence[:at]
    return before.count("(") > before.count(")")


_ASKS_FIGURE = re.compile(
    r"\b(when|what year|which year|how (many|much|long|old|often|big|large|fast)|(birth)?date|"
    r"birthday|port|version|number|size|limit|timeout|percent(age)?)\b",
    re.I,
)


def marks_answer(question: str, span: str) -> bool:
    """Whether the words a pointer copied are worth marking as the answer: they add a word the
    question did not say (not its own subject copied back), and they are not only figures when
    the question asks for no figure (a year or a birth date marked for "which album?")."""
    asked = {_stem(w) for w in _TOKEN.findall(question)}
    added = [t for t in _TOKEN.findall(span) if _content(t) and _stem(t) not in asked]
    if not added:
        return False
    return not all(_FIGURE.search(t) for t in added) or bool(_ASKS_FIGURE.search(question))


def answer_span(question: str, text: str) -> str:
    """The answering span of an answer's first sentence, citations removed; '' when none."""
    sentence = strip_citations(text)
    bounds = span_bounds(question, sentence)
    return sentence[bounds[0] : bounds[1]] if bounds else ""
