"""A cheap check that a question is in the packaged embedder's language (English): a question
in another language is searched all the same, but the asker is told why it may find little."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache

from kbqa.assistant.text import STOPWORDS
from kbqa.retrieval.embedder import packaged_embedder_path

# Words common in questions in languages other than English, which English does not use.
_FOREIGN_WORDS = (  # Dutch, German, French, Spanish, Portuguese, Italian
    "hoe wat waar wanneer waarom wie welke het een de van ik je jij mijn niet voor naar ook "
    "wie was wo wann warum welche ich nicht und ist der die das ein eine mein kann "
    "auf welchem welcher welches wird werden gibt für bei zum zur dem sind "
    "comment quoi quand pourquoi quel quelle je le la les des est une mon pas pour avec "
    "cómo como qué que cuándo dónde por cuál yo el los las una es mi para con "
    "quando onde porque qual eu não um uma meu com come cosa dove perché il di non sono"
)
_FOREIGN = frozenset(_FOREIGN_WORDS.split()) - STOPWORDS
# Those of them that English also writes, as a word or an abbreviation ("come", "EU", "ES",
# "LA", a URL's "com"): alone in a question, they say nothing about its language.
_ENGLISH_TOO_WORDS = (
    "de van die das wo dem des le la les est comment pour mon pas yo el los las es mi para con "
    "eu um com come il di non dove"
)
_ENGLISH_TOO = frozenset(_ENGLISH_TOO_WORDS.split())
_LATIN = re.compile(r"[A-Za-z]")
# Letters English writes only in borrowed words ("café"): another language's word, likelier.
_ACCENTED = re.compile(r"[äöüßéèêàâçñãõìòù]")
_LETTER = re.compile(r"[^\W\d_]")
NOTE = (
    "this question does not look like English: the embedder (the packaged all-MiniLM-L6-v2) "
    "reads English only, so ask in English for the best results"
)


_MULTILINGUAL = ("multilingual", "labse", "bge-m3", "e5-", "xlm", "mpnet-base-v2-multi")


@cache
def _vocabulary() -> frozenset[str]:
    """The whole words of the packaged embedder's WordPiece vocabulary (vocab.txt: lower-case,
    accents stripped, as its tokenizer reads text); empty where it is not installed."""
    path = packaged_embedder_path()
    vocab = path / "vocab.txt" if path is not None else None
    if vocab is None or not vocab.is_file():
        return frozenset()
    return frozenset(w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha())


def _plain(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return [_plain(w) for w in re.findall(r"[^\W\d_]+", text.lower())]


def note_for(question: str, embedder_name: str = "", passages: Sequence[str] = ()) -> str:
    """A note when `question` looks written in another language (or script); "" otherwise,
    and always "" for an embedder known to read many languages. `passages`: the texts found
    for the question, whose words (names, jargon) count as read."""
    if any(tag in embedder_name.lower() for tag in _MULTILINGUAL):
        return ""
    letters = _LETTER.findall(question)
    if not letters:
        return ""
    if sum(1 for c in letters if _LATIN.match(c)) < 0.6 * len(letters):
        return NOTE  # mostly another script: Cyrillic, CJK, Arabic…
    tokens = re.findall(r"[^\W\d_]+", question.lower())
    foreign = sum(1 for t in tokens if t in _FOREIGN or _ACCENTED.search(t))
    english = sum(1 for t in tokens if t in STOPWORDS)
    if foreign >= 2 and foreign > english:
        return NOTE
    # A short question has too few words to count ("Mag ik thuiswerken?"): there, one function
    # word only another language writes, and none of English's, is the sign. English questions
    # without a function word are terse noun phrases ("loki retention?") with none of these.
    own = sum(1 for t in tokens if t in _FOREIGN and t not in _ENGLISH_TOO)
    if own and not english:
        return NOTE
    # Nor any word the embedder itself reads whole ("Hoeveel vakantiedagen?"): a word its
    # vocabulary holds, or one the passages found for the question use ("grafana url?"), which
    # English questions made of names and jargon have. One word alone says too little.
    words, vocabulary = _words(question), _vocabulary()
    if len(words) < 2 or not vocabulary or any(w in vocabulary for w in words):
        return ""
    used = {w for text in passages for w in _words(text)}
    return "" if used.intersection(words) else NOTE
