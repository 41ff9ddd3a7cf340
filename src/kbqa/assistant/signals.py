"""Checks on a pointed answer, as named signals: each reads one pick (the unit the model named,
its passage's label, the unit just before it) and returns a Finding when the pick must not be
delivered. Each has a name (its reason code, counted by `kbqa eval qa`), is switched on by
listing it in the `pointer_checks` setting, and holds its own threshold. Adding one is a class
and a line in SIGNALS.

What free text needed policing for (a changed figure, an invented detail, a misread) cannot
happen here: the delivered words are the passage's. What remains is choosing the wrong unit:
one about another subject, or one the model itself was unsure of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from kbqa.assistant import support
from kbqa.assistant.pointer import Pick
from kbqa.assistant.units import Unit


@dataclass(frozen=True)
class Pointed:
    """What a signal reads about one pick."""

    question: str
    pick: Pick
    unit: Unit
    label: str  # the unit's passage, as "Title › Heading"
    before: str = ""  # the unit before it in the same passage


@dataclass(frozen=True)
class Finding:
    signal: str
    detail: str

    def __str__(self) -> str:
        return f"{self.signal}: {self.detail}"


class Signal(Protocol):
    name: str

    def __call__(self, pointed: Pointed) -> Finding | None: ...


class _Threshold:
    """A signal that reads one of the pick's scores (`field`) against a threshold: the least
    it may be, or with `most = True` the most."""

    name = ""
    field = ""
    words = ""  # how the finding names the score
    most = False

    def __init__(self, threshold: float):
        self.threshold = threshold

    def __call__(self, pointed: Pointed) -> Finding | None:
        value = getattr(pointed.pick, self.field)
        if (value > self.threshold) if self.most else (value < self.threshold):
            sign = ">" if self.most else "<"
            return Finding(
                self.name, f"the model's {self.words} {value:.2f} {sign} {self.threshold}"
            )
        return None


class PointerProbability(_Threshold):
    """The model's own probability for the unit's number, renormalised over the valid
    numbers: a pick it was unsure of is more often the wrong unit."""

    name, field, words = "pointer_probability", "probability", "probability"


class PointerMargin(_Threshold):
    """How far the model's chosen number stood above the next likeliest: a pick it hesitated
    between two units over is more often the wrong one (AUROC 0.80 for supported on blind read
    2, against 0.76 for the probability: docs/pointer.md)."""

    name, field, words = "pointer_margin", "margin", "margin"


class PointerShare(_Threshold):
    """The model's probability for the first digit of the unit's number, renormalised over
    the valid first digits: with `pointer_labels = "passage"` the digit names the passage, so
    this is how sure the model is of *where* the answer is, whichever of its neighbouring
    sentences it then names (docs/pointer.md, version 13)."""

    name, field, words = "pointer_share", "share", "share"


class PointerDeclined(_Threshold):
    """The model's probability, where it wrote its first number, that no unit answers ([0]):
    a reply that nearly declined is not sure there is an answer."""

    name, field, words, most = "pointer_declined", "declined", "probability of [0]", True


# Identifiers a question names: route-planner, lk-breakglass, staging_app, SEV2, v1.29, `x`.
_IDENTIFIER = re.compile(r"`[^`]+`|\b\w+(?:[-_./]\w+)+\b|\b(?=\w*\d)(?=\w*[A-Za-z])\w{2,}\b")
# Written like identifiers, but the words of a sentence: "i.e. at least one file".
_ABBREVIATIONS = {"i.e", "e.g", "a.k.a", "n.b"}


class Subject:
    """A question that names things (identifiers, and capitalised names past its first word)
    is answered by a unit about one of them: one named in the unit, its passage's label or the
    unit before it. "What port does route-planner use?" answered with tracker's row is the
    wrong entity; a comparison of two answered by a unit about one of them is not."""

    name = "subject"

    def __call__(self, pointed: Pointed) -> Finding | None:
        about = f"{pointed.label}\n{pointed.before}\n{pointed.unit.text}"
        have = about.casefold()
        found = _IDENTIFIER.finditer(pointed.question)
        ids = {m.group(0).strip("`").casefold() for m in found} - _ABBREVIATIONS
        names = ids | support.missing_names(pointed.question, "")
        missing = {n for n in ids if n not in have} | support.missing_names(pointed.question, about)
        if names and missing >= names:
            return Finding(self.name, f"the unit names none of {', '.join(sorted(names))}")
        return None


SIGNALS = {
    "pointer_probability": lambda settings: PointerProbability(settings.pointer_min_probability),
    "pointer_margin": lambda settings: PointerMargin(settings.pointer_min_margin),
    "pointer_share": lambda settings: PointerShare(settings.pointer_min_share),
    "pointer_declined": lambda settings: PointerDeclined(settings.pointer_max_declined),
    "subject": lambda settings: Subject(),
}


def build(settings) -> list[Signal]:
    """The signals the `pointer_checks` setting switches on, in its order."""
    unknown = [name for name in settings.pointer_checks if name not in SIGNALS]
    if unknown:
        from kbqa.errors import KbqaError

        known = ", ".join(SIGNALS)
        raise KbqaError(f"pointer_checks: unknown check {unknown[0]!r} (known: {known})")
    return [SIGNALS[name](settings) for name in settings.pointer_checks]


__all__ = [
    "SIGNALS",
    "Finding",
    "Pointed",
    "PointerDeclined",
    "PointerMargin",
    "PointerProbability",
    "PointerShare",
    "Signal",
    "Subject",
    "build",
]
