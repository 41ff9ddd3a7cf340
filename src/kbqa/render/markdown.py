"""An answer as Markdown, for the OpenAI-compatible endpoint: the answer with its [n] markers
(or, when it points, the copied words in bold and each unit as a `>` quote), then its sources."""

from __future__ import annotations

from kbqa.render.model import shown
from kbqa.types import Answer, Evidence

SOURCES_HEADING = "\n\nSources:\n"
CLOSEST_HEADING = "\n\nClosest sources:\n"


def quote(evidence: Evidence) -> str:
    lines = f"{evidence.text} [{evidence.n}]".splitlines()
    return "\n".join(f"> {line}" for line in lines)


def evidence_piece(evidence: Evidence, first: bool) -> str:
    """A unit as streamed: pieces joined make `body` of the pointed answer."""
    if not first:
        return "\n\n" + quote(evidence)
    return (f"**{evidence.span}**\n\n" if evidence.span else "") + quote(evidence)


def body(answer: Answer) -> str:
    """The answer without its sources."""
    view = shown(answer)
    if not view.pointed:
        return view.text
    lead = [f"**{view.lead}**"] if view.lead else []
    return "\n\n".join(lead + [quote(e) for e in view.evidence])


def footer(answer: Answer) -> str:
    """The sources: cited ('[n] label — where') or, when it abstained, the closest."""
    view = shown(answer)
    if view.closest:
        lines = [f"- {s.line()}" for s in view.sources]
        return CLOSEST_HEADING + "\n".join(lines) if lines else ""
    lines = [s.line() for s in view.sources]
    return SOURCES_HEADING + "\n".join(lines) if lines else ""


def markdown(answer: Answer) -> str:
    return body(answer) + footer(answer)
