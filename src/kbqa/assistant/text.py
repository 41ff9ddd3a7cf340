"""Words and sentences: the tokenising every answer stage shares (the units a pointer names,
the confidence's terms, the free style's check, quotes)."""

from __future__ import annotations

import re
import unicodedata

_STOPWORDS = (
    "a an the and or but if then else of to in on at by for with from as is are was were be "
    "been being it its this that these those there here you your we our they their he she "
    "his her i me my do does did done can could should would will shall may might must not "
    "no yes so than too very just also into out up down over under about after before again "
    "once all any both each few more most other some such only own same what which who whom "
    "when where why how use used using run"
)
STOPWORDS = frozenset(_STOPWORDS.split())

_CITATION = re.compile(r"\s*\[(\d+)\]")


def words(text: str) -> list[str]:
    """Lower-case words, accents folded: "Rodríguez" is "rodriguez", one word, whichever way
    the model spells it."""
    if not text.isascii():
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    return re.findall(r"[a-z0-9]+(?:[._/:-][a-z0-9]+)*", text.lower())


def spaced(text: str) -> str:
    """A regex for `text`'s words in order, any whitespace between them (a copy of a passage's
    words is found in it however its lines were broken)."""
    return r"\s+".join(re.escape(w) for w in text.split())


def paragraphs(text: str) -> list[str]:
    """`text`'s paragraphs, each on one line: a procedure unit (steps.py) has one a step."""
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 1}


# A period that ends an initial, a run of them or a title, not a sentence: "William H. Macy
# Jr.", "D.W. Kann", "U.S. Route 50", "Glassroth v. Moore", "Dr. Smith" (a split there made
# "William H [1]." and "U.S [1]." answers of their own).
_NOT_AN_END = re.compile(
    r"(?:(?<![\w.])(?:[A-Z]\.)*[A-Z]"
    r"|\b(?:Jr|Sr|Dr|Mr|Mrs|Ms|Mt|St|Prof|Gen|Col|Lt|Capt|Gov|Sen|Rev|vs|v|No|Inc|Co|Corp|Ltd))\.$"
)


# A numbered list item's marker: "1. Identify the version" is the item "Identify the version"
# (split at the marker's period, "1." became a sentence of its own).
_ITEM_MARK = re.compile(r"^\s*\d{1,2}[.)]\s+")
_BARE_MARK = re.compile(r"^\d{1,2}[.)]$")
_TRAILING_MARK = re.compile(r"(?<=[:.!?])\s+\d{1,2}[.)]$")  # "these steps: 1.", "done. 2."


def split_sentences(text: str) -> list[str]:
    """Sentences and list items, with their citation markers kept attached."""
    text = re.sub(r"(\[\d+\])(?=[A-Za-z])", r"\1 ", text)
    out: list[str] = []
    for line in re.split(r"\n+", text):
        same_line = False
        line = _ITEM_MARK.sub("", line)
        # Break after sentence ends or citation markers that are followed by a new sentence.
        for part in re.split(r"(?<=[.!?\]])\s+(?=[A-Z`\"'(*-])", line):
            part = _TRAILING_MARK.sub("", part.strip(" -*\t"))
            if not part or _BARE_MARK.match(part):
                continue
            if same_line and _NOT_AN_END.search(out[-1]):
                out[-1] = f"{out[-1]} {part}"
            else:
                out.append(part)
            same_line = True
    return out


def citations(sentence: str) -> list[int]:
    return [int(n) for n in _CITATION.findall(sentence)]


def strip_citations(sentence: str) -> str:
    return _CITATION.sub("", sentence).strip()
