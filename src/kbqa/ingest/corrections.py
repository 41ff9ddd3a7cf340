"""Corrections inside a Slack thread: which earlier message a later one supersedes.

A message corrects an earlier claim of the thread when it states a different value (a figure,
a host, a command, a #channel) for the same thing (they share words besides the values) and a
cue says so: its words ("actually", "correction", "no longer", "instead of"), a ✅ on it, the
asker thanking for it, or an edit made after the claim it contradicts. Each cue's precision
and recall on tests/data/freshness are in docs/freshness.md; CUES holds the ones kept."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

WORD_CUES = {
    "actually": re.compile(r"\bactually\b", re.I),
    "correction": re.compile(r"\bcorrection\b", re.I),
    "no longer": re.compile(r"\bno longer\b", re.I),
    "instead of": re.compile(r"\binstead of\b", re.I),
}
ALL_CUES = (*WORD_CUES, "reaction", "thanks", "edit")
CUES = ALL_CUES  # every cue measured right on the fixture (docs/freshness.md)
RESOLVED = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
_THANKS = re.compile(r"\b(thanks|thank you|thx|ty|worked|works now|that did it)\b", re.I)
_COMMAND = re.compile(r"`([^`\n]+)`")
_TOKEN = re.compile(r"[#$/]?[A-Za-z0-9][\w.:/@$-]*[A-Za-z0-9]|[#$]?\d")
_WORD = re.compile(r"[a-z]+")
_ITEM = re.compile(r"[a-z0-9][a-z0-9-]*")
_STOPWORDS = (
    "a an the and or but of to in on at by for with from as is are was were be it its this that "
    "these those there here you your we our they i me my do does did can should would will use "
    "used using now not no yes so than just also since only still directly today"
)
_STOP = frozenset(_STOPWORDS.split())


@dataclass(frozen=True)
class Message:
    """What the cues read of a message: who, when (its ts and, if edited, the edit's), what."""

    ts: Decimal
    author: str
    text: str
    edited: Decimal | None = None
    reactions: frozenset[str] = frozenset()


def values(text: str) -> set[str]:
    """The values a message states: backticked commands, and tokens holding a digit, a dot
    inside (a host), a slash or a leading #, lower-cased and without trailing punctuation."""
    found = {c.strip().lower() for c in _COMMAND.findall(text)}
    rest = _COMMAND.sub(" ", text)
    for token in _TOKEN.findall(rest):
        if any(ch.isdigit() for ch in token) or token.startswith(("#", "/")) or "." in token:
            found.add(token.lower().rstrip(".,;:"))
    return found


def slot_words(text: str) -> set[str]:
    """The words that say what a value is for: the text less its values and stopwords."""
    rest = _COMMAND.sub(" ", text)
    for value in _TOKEN.findall(rest):
        if value.lower().rstrip(".,;:") in values(text):
            rest = rest.replace(value, " ")
    return {w for w in _WORD.findall(rest.lower()) if w not in _STOP and len(w) > 2}


def conflict(earlier: str, later: str, restated: bool = False) -> bool:
    """Whether two claims give different values for the same thing. `restated`: the later
    may repeat the earlier value ("6433, not 5433"), as a correction in words does."""
    a, b = values(earlier), values(later)
    a, b = _as_items(a, b), _as_items(b, a)
    if not a or not (b - a) or (a <= b and not restated):
        return False
    if any(_alike(x, y) for x in a - b for y in b - a):
        return True  # stg-ledger-01 / stg-ledger-07, `sync --full` / `sync --incremental`
    wa, wb = slot_words(earlier), slot_words(later)
    return len(wa & wb) >= 2 or (bool(wa & wb) and len(wa & wb) >= 0.5 * min(len(wa), len(wb)))


def _as_items(mine: set[str], other: set[str]) -> set[str]:
    """A list written with "/" as its items where the other message gives each of them:
    "SEV1/SEV2" against "SEV1 and SEV2" (or "SEV2/SEV1") is no other value."""
    theirs = other | {i for v in other for i in slash_items(v)}
    out = set()
    for value in mine:
        items = slash_items(value)
        out |= items if items and items <= theirs else {value}
    return out


def slash_items(value: str) -> frozenset[str]:
    """The items of "sev1/sev2" or "mon/tue"; none of a path, a URL, a host or "24/7". Also
    what assistant/freshness.py reads such a list as."""
    parts = value.split("/")
    if len(parts) < 2 or not all(_ITEM.fullmatch(p) and re.search("[a-z]", p) for p in parts):
        return frozenset()
    return frozenset(parts)


def _alike(a: str, b: str) -> bool:
    """Two values of one kind: the same first four characters, letters among them."""
    return a[:4] == b[:4] and any(ch.isalpha() for ch in a[:4])


def _claim(message: Message) -> bool:
    return bool(values(message.text)) and not message.text.rstrip().endswith("?")


def superseded(thread: Sequence[Message], cues: Sequence[str] = CUES) -> dict[int, tuple[int, str]]:
    """Index of each superseded message -> (index of the message that corrects it, the cue).
    `thread` is in ts order, its first message the question or the thread's opening."""
    out: dict[int, tuple[int, str]] = {}
    asker = thread[0].author if thread else ""

    def claim(i: int) -> bool:
        # An opening that asks anything is the question, whatever else it says (the example
        # export's "…to ClickHouse? I see inserts of ~5k rows…" was taken for a claim).
        return _claim(thread[i]) and not (i == 0 and "?" in thread[i].text)

    def mark(later: int, cue: str, before: Sequence[int]) -> None:
        for i in before:
            if i not in out and claim(i) and conflict(thread[i].text, thread[later].text):
                out[i] = (later, cue)

    for j, message in enumerate(thread):
        if j == 0:
            continue
        earlier = range(j - 1, -1, -1)
        for cue, pattern in WORD_CUES.items():
            if cue in cues and pattern.search(message.text) and _claim(message):
                # The nearest earlier claim it contradicts: a correction answers the last one.
                hit = next((i for i in earlier if claim(i)
                            and conflict(thread[i].text, message.text, True)), None)  # fmt: skip
                if hit is not None and hit not in out:
                    out[hit] = (j, cue)
        if "reaction" in cues and message.reactions & RESOLVED and _claim(message):
            mark(j, "reaction", range(j))
        if "thanks" in cues and message.author == asker and _THANKS.search(message.text):
            accepted = _accepted(thread, j)
            if accepted is not None:
                mark(accepted, "thanks", range(accepted))
        if "edit" in cues and message.edited is not None and _claim(message):
            # Claims posted between this message and its edit: the edit answered them.
            between = [i for i in range(j + 1, len(thread)) if thread[i].ts < message.edited]
            mark(j, "edit", between)
    return out


def _accepted(thread: Sequence[Message], thanks: int) -> int | None:
    """The reply the asker thanks: the one whose value the thanks repeats, else the last
    claim before it by someone else."""
    said = thread[thanks].text.lower()
    claims = [i for i in range(thanks - 1, 0, -1) if thread[i].author != thread[0].author]
    claims = [i for i in claims if _claim(thread[i])]
    for i in claims:
        if any(v.split(".")[0] in said for v in values(thread[i].text) - values(thread[0].text)):
            return i
    return claims[0] if claims else None
