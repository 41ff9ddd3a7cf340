"""Disagreement across sources: when two shown passages give different values for the same
thing (a host, a port, a command, a number, a name), the newer one is the evidence and the
answer says so in one line, citing both ("updated 2024-03-08; earlier: 5432 in #eng-help,
2024-03-05 [2]"). An explicit ordering by each source's own time (Hit.updated_at), not a
decay: passages that agree, or whose time is unknown or equal, are left as they are.

"The same thing": the two sentences share every word that says what the value is for (the
shorter one's words are all in the longer one), the question's own values are in both, and
the question shares a word with them; "different values": each has a value (support.py's
figures, a host, a command, a date, a hyphenated name, a capitalised name) the other lacks in
any writing: "6 Dec" is "6 December", "Tue" is "Tuesday", and "SEV1/SEV2" is "SEV1 and SEV2"
where the other sentence gives each item."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from kbqa.assistant import support
from kbqa.assistant.text import content_words, split_sentences
from kbqa.ingest.corrections import slash_items
from kbqa.types import Answer, Citation, Hit

# Words that announce a change rather than name the thing changed ("Heads up: from today…").
_NEWS = frozenset(
    [
        "update",
        "updated",
        "heads",
        "fyi",
        "note",
        "policy",
        "change",
        "changed",
        "moved",
        "reminder",
        "now",
        "today",
        "from",
        "week",
        "effective",
        "starting",
    ]
)
# A whole word: "SEV" of "SEV1" or "ROUTE" of "ROUTE-2291" is no name (the code is a value).
_NAME = re.compile(r"(?<=\s)[A-Z][a-zA-Z]+(?:\s[A-Z][a-zA-Z]+)*(?![\w-])")
_HYPHENATED = re.compile(r"\b[a-z][a-z0-9]*(?:-[a-z0-9]+)+\b")
_COMMAND = re.compile(r"`([^`\n]+)`")
_WORD = re.compile(r"[a-z]+")
_MONEY = re.compile(r"[$€£]\d[\d,.]*")
_CHANNEL = re.compile(r"#[a-z0-9][\w-]*")
SPEAKER = re.compile(r"^[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,3}: ")  # "Cy Park: " in a thread
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]  # fmt: skip
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
# One writing per month and weekday: "Nov", "Nov." and "November" are one value.
_FULL = {
    **{m[:3]: m for m in _MONTHS + _DAYS},
    **{"sept": "september", "tues": "tuesday", "thur": "thursday", "thurs": "thursday"},
}
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
# "18 Nov", "6th December", "March 3": one value, not a number and a name. Months are
# capitalised ("may" is a verb); a four-digit year after it stays a figure of its own.
_DATE = re.compile(
    rf"\b(?:(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<month>{_MONTH})"
    rf"|(?P<month2>{_MONTH})\.?\s+(?P<day2>\d{{1,2}})(?:st|nd|rd|th)?)\b(?![:.,]?\d)"
)
_DATE_VALUE = re.compile(_DATE.pattern, re.I)
_CALENDAR = frozenset([*_FULL, *_MONTHS, *_DAYS])
SHOWN = 6  # passages compared: the ones an answer can cite


@dataclass(frozen=True)
class Disagreement:
    """Two passages' sentences giving different values for one thing, the newer first."""

    newer: Hit
    older: Hit
    newer_sentence: str
    older_sentence: str
    older_values: tuple[str, ...]


@functools.lru_cache(maxsize=4096)  # every pair of sentences of six passages asks again
def values(sentence: str) -> frozenset[str]:
    """What a sentence states: commands, figures and codes (support.missing_figures' tokens),
    hosts, hyphenated names and capitalised names (not the sentence's first word)."""
    sentence = SPEAKER.sub("", sentence)
    found = {c.strip().lower() for c in _COMMAND.findall(sentence)}
    rest = _COMMAND.sub(" ", sentence)
    found |= {m.group(0).lower() for m in _DATE.finditer(rest)}
    rest = _DATE.sub(" ", rest)
    found |= support.missing_figures(rest, "")
    found |= {w for w in support.words(rest) if "." in w or "/" in w}
    found |= set(_HYPHENATED.findall(rest.lower())) | set(_CHANNEL.findall(rest.lower()))
    found |= {m.rstrip(".,") for m in _MONEY.findall(rest)}  # "$500", not "500", in the line
    found |= {n.lower() for n in _NAME.findall(" " + rest.split(" ", 1)[-1])}
    return frozenset(found)


@functools.lru_cache(maxsize=4096)
def _key(value: str) -> str:
    """A value in one writing: "6 dec", "dec 6" and "6th december" are "6 december"; "tue" is
    "tuesday"."""
    date = _DATE_VALUE.fullmatch(value)
    if date:
        day, month = date["day"] or date["day2"], date["month"] or date["month2"]
        return f"{int(day)} {_FULL.get(month.lower()[:3], month.lower())}"
    return _FULL.get(value.rstrip("."), value)


@functools.lru_cache(maxsize=4096)
def _items(value: str) -> frozenset[str]:
    """The items of a list written with "/" ("sev1/sev2", "mon/tue"), each in one writing;
    none for anything else: a path ("/healthz"), a URL or host ("grafana.internal/d/x"), a
    figure ("24/7")."""
    return frozenset(_key(p) for p in slash_items(value))


def _stated(mine: frozenset[str], other: frozenset[str]) -> set[str]:
    """What a sentence states, each value in one writing, with the items of its "/" lists
    where the other sentence gives every item ("SEV1/SEV2" against "SEV1 and SEV2")."""
    theirs = {_key(v) for v in other} | {i for v in other for i in _items(v)}
    out = {_key(v) for v in mine}
    for value in mine:
        if (items := _items(value)) and items <= theirs:
            out |= items
    return out


def unstated(mine: frozenset[str], other: frozenset[str]) -> frozenset[str]:
    """The values of `mine` that `other` does not give in any writing: "nov" is given by
    "november", "sev1/sev2" by "sev1" and "sev2", and each of those by "sev1/sev2"."""
    theirs = _stated(other, mine)
    return frozenset(
        v for v in mine if _key(v) not in theirs and not (_items(v) and _items(v) <= theirs)
    )


@functools.lru_cache(maxsize=4096)
def _slot(sentence: str) -> frozenset[str]:
    """The words that say what the sentence's values are for."""
    rest = _COMMAND.sub(" ", sentence).lower()
    for value in sorted(values(sentence), key=len, reverse=True):
        rest = rest.replace(value, " ")
    words = {w for w in _WORD.findall(rest) if len(w) > 2} & content_words(rest)
    return frozenset(words - _NEWS)


@functools.lru_cache(maxsize=4096)
def _words(sentence: str) -> tuple[str, ...]:
    return tuple(support.words(sentence))


def disagree(question: str, older: str, newer: str) -> tuple[str, ...]:
    """The older sentence's values where two sentences answer the question's thing with
    different values; () where they do not disagree."""
    older, newer = SPEAKER.sub("", older), SPEAKER.sub("", newer)
    if older.rstrip().endswith("?") or newer.rstrip().endswith("?"):
        return ()  # a question states nothing
    by_values = _by_values(question, older, newer)
    return by_values or _by_frame(question, older, newer)


def _by_values(question: str, older: str, newer: str) -> tuple[str, ...]:
    a, b = values(older), values(newer)
    asked = values(question)
    old, new = unstated(a, b), unstated(b, a)
    if not old or not new or unstated(asked, a) or unstated(asked, b):
        return ()
    sa, sb = _slot(older), _slot(newer)
    if not sa or not sb:
        return ()
    small, large = (sa, sb) if len(sa) <= len(sb) else (sb, sa)
    if small <= large and small & content_words(question):
        return tuple(sorted(old))
    return ()


def _by_frame(question: str, older: str, newer: str) -> tuple[str, ...]:
    """The same sentence up to a value at its end, as a rewritten runbook line reads ("Restart
    the API with systemctl restart api" / "… with kubectl rollout restart deploy/api"), where
    the markup that marked the command as one was lost in parsing: a shared opening of two
    content words or more, one of them asked about, then different words."""
    a, b = _words(older), _words(newer)
    if not a or not b or a[0] != b[0]:
        return ()
    same = 0
    while same < min(len(a), len(b)) and a[same] == b[same]:
        same += 1
    opening = content_words(" ".join(a[:same]))
    if len(opening) < 2 or not opening & content_words(question):
        return ()
    if same < 0.5 * min(len(a), len(b)):
        return ()  # a shared subject, then two different statements about it
    end = 0
    while end < min(len(a), len(b)) - same and a[-1 - end] == b[-1 - end]:
        end += 1
    old, new = a[same : len(a) - end], b[same : len(b) - end]
    if not old or not new or _written(old) <= _written(new):
        return ()  # nothing of the older ending is gone: "Dec 6" is "6th December"
    return (older.strip().rstrip("."),)  # quoted whole: its words out of order would mislead


def _written(words: tuple[str, ...]) -> set[str]:
    """Words each in one writing: "6th" is "6", "dec" is "december", "sev1/sev2" is "sev1"
    and "sev2" (the "and" of a list aside)."""
    out = set()
    for word in words:
        for item in _items(word) or {_key(word)}:
            out.add(re.sub(r"^(\d+)(?:st|nd|rd|th)$", r"\1", item))
    return out - {"and", "or"}


def find(question: str, hits: list[Hit]) -> list[Disagreement]:
    """The disagreements among the first SHOWN hits, at most one per pair of documents."""
    out: list[Disagreement] = []
    shown = hits[:SHOWN]
    sentences = [split_sentences(h.text) for h in shown]
    for i, first in enumerate(shown):
        for j in range(i + 1, len(shown)):
            second = shown[j]
            if first.uri == second.uri or not first.updated_at or not second.updated_at:
                continue
            if first.updated_at == second.updated_at:
                continue
            older, newer = (i, j) if first.updated_at < second.updated_at else (j, i)
            pair = _first_pair(question, sentences[older], sentences[newer])
            if pair is not None:
                old, new, kept = pair
                out.append(Disagreement(shown[newer], shown[older], new, old, kept))
    return out


def _first_pair(
    question: str, older: list[str], newer: list[str]
) -> tuple[str, str, tuple[str, ...]] | None:
    """The disagreeing pair of sentences that shares most words with the question, with the
    older one's values."""
    asked = content_words(question)
    pairs = [(o, n, kept) for o in older for n in newer if (kept := disagree(question, o, n))]
    if not pairs:
        return None
    return max(pairs, key=lambda p: len(asked & content_words(p[0] + " " + p[1])))


def prefer_newer(question: str, hits: list[Hit]) -> tuple[list[Hit], list[Disagreement]]:
    """The hits with each older disagreeing sentence taken out of its passage (it is not
    evidence) and the newer passage moved up to the older one's rank where it was below it;
    and the disagreements, for `annotate`."""
    found = find(question, hits)
    if not found:
        return hits, []
    out = list(hits)
    for d in found:
        at = {h.chunk_id: k for k, h in enumerate(out)}
        o, n = at[d.older.chunk_id], at[d.newer.chunk_id]
        if n > o:
            out.insert(o, out.pop(n))
            o += 1
        text = out[o].text.replace(d.older_sentence, "").strip()
        out[o] = replace(out[o], text=text or out[o].text)
    return out, found


def annotate(answer: Answer, found: list[Disagreement]) -> Answer:
    """The answer with one line per disagreement it rests on (its evidence or text holds the
    newer sentence's values), the older source cited after the others."""
    if answer.abstained:
        return answer
    said = " ".join([answer.text, *(e.quote for e in answer.evidence)]).lower()
    citations, lines = list(answer.citations), []
    for d in found:
        if d.newer_sentence.lower().rstrip(".") not in said and not _gives_newer(d, said):
            continue
        n = next((c.n for c in citations if c.hit.uri == d.older.uri), None)
        if n is None:
            n = max((c.n for c in citations), default=0) + 1
            original = next((h for h in answer.hits if h.uri == d.older.uri), d.older)
            citations.append(Citation(n, original))
        lines.append(
            f"updated {_date(d.newer)}; earlier: {shown_values(d.older_values)} in "
            f"{_place(d.older)}, {_date(d.older)} [{n}]"
        )
    for c in answer.citations:
        lines += _corrected(c, said)
    if not lines:
        return answer
    return replace(answer, citations=tuple(citations), updated="\n".join(lines))


def shown_values(found: tuple[str, ...] | frozenset[str]) -> str:
    """Values as a person reads them: "35 days", not "35, 35 day"; "#ops", not "#ops, ops";
    "6 Dec", not "6 decs"."""
    out = []
    for value in sorted(found, key=len, reverse=True):
        number, _, unit = value.partition(" ")
        if _DATE_VALUE.fullmatch(value) or value in _CALENDAR:
            value = re.sub(r"[a-z]+", lambda m: m[0].title() if m[0] in _CALENDAR else m[0], value)
        elif unit and number.replace(".", "").replace(",", "").isdigit():
            value = f"{value}s" if number != "1" else value
        if not any(value in kept for kept in out):
            out.append(value)
    return ", ".join(sorted(out))


def _gives_newer(d: Disagreement, said: str) -> bool:
    fresh = unstated(values(d.newer_sentence), values(d.older_sentence))
    return bool(fresh) and all(v in said for v in fresh)


def _corrected(citation: Citation, said: str) -> list[str]:
    """A line per claim of a cited Slack thread that a later message corrected (ingest took
    it out of the text), where the answer gives the correction's value."""
    out = []
    for old in citation.hit.metadata.get("superseded") or []:
        fresh = unstated(values(old["correction"]), values(old["text"]))
        if not fresh or not all(v in said for v in fresh):
            continue
        before = unstated(values(old["text"]), values(old["correction"])) or values(old["text"])
        out.append(
            f"corrected in the thread {_day(old['corrected_by'])}; earlier: {shown_values(before)} "
            f"({old['author']}, {_day(old['ts'])}) [{citation.n}]"
        )
    return out


def _day(stamp: float | str) -> str:
    return datetime.fromtimestamp(float(stamp), UTC).date().isoformat()


def _date(hit: Hit) -> str:
    return _day(hit.updated_at)


def _place(hit: Hit) -> str:
    if hit.metadata.get("kind") == "slack" and hit.metadata.get("channel"):
        return f"#{hit.metadata['channel']}"
    return "/".join(hit.uri.split("/")[-2:]) if "://" not in hit.uri else hit.title
