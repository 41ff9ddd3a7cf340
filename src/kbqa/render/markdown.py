"""An answer as Markdown, for the OpenAI-compatible endpoint: the answer with its [n] markers
(or, when it points, each unit as a `>` quote with its copied words in bold), then its sources
(a file as an absolute link to the server's /files/ route, when the server's URL is given)."""

from __future__ import annotations

from kbqa.render import rows
from kbqa.render.model import Source, shown, token_scope
from kbqa.render.page import file_link, uri_is_path
from kbqa.types import Answer, Evidence, Quoted

SOURCES_HEADING = "\n\nSources:\n"
CLOSEST_HEADING = "\n\nClosest sources:\n"
WHY_OPENING = "\n\n_("  # an abstention's why, after its closest sources


def quote(evidence: Evidence) -> str:
    """A unit as a `>` quote, its copied words in bold (where Markdown's `*` can enclose them)."""
    text, span = rows.readable(evidence.text), evidence.span
    before = text.partition(span)[0] if span else ""
    if (
        span
        and span in text
        and "*" not in span
        and span == span.strip()
        and not before.count("`") % 2
    ):
        before, _, after = text.partition(span)
        text = f"{before}**{span}**{after}"
    lines = _literal(rows.in_context(evidence, text, f" [{evidence.n}]")).splitlines()
    return "\n".join(f"> {line}" for line in lines)


def _literal(text: str) -> str:
    """`text` with each "<" outside `code` escaped, so that a Markdown reader shows
    "promote <service>" as written instead of taking "<service>" for an HTML tag and
    dropping it."""
    parts = text.split("`")
    # Even parts lie outside backticks; after a backtick that never closes, so does the rest.
    unclosed = len(parts) % 2 == 0
    return "`".join(
        part.replace("<", "\\<") if i % 2 == 0 or (unclosed and i == len(parts) - 1) else part
        for i, part in enumerate(parts)
    )


def text_piece(text: str) -> str:
    """A streamed piece of an answer's text as `body` shows it: quoted sentences (Quoted) as a
    pointed answer's quote reads them (a table row as the sentence it means, a "<" kept from
    Markdown readers); the model's own sentences as written."""
    return _literal(rows.quoted(text)) if isinstance(text, Quoted) else text


def evidence_piece(evidence: Evidence, first: bool) -> str:
    """A unit as streamed: pieces joined make `body` of the pointed answer."""
    return quote(evidence) if first else "\n\n" + quote(evidence)


def body(answer: Answer) -> str:
    """The answer without its sources (with what was searched for, when a follow-up was)."""
    view = shown(answer)
    lead = f"_searched for: {view.searched}_\n\n" if view.searched else ""
    lead += f"_Note: {view.note}_\n\n" if view.note else ""
    if not view.pointed:
        return lead + text_piece(Quoted(view.text) if answer.mode == "extracted" else view.text)
    return lead + "\n\n".join(quote(e) for e in view.evidence)


def answer_of(reply: str) -> str:
    """The answer inside a reply that `body` and `footer` wrote, sent back as a conversation's
    history: without the lead lines (what was searched for, the language note) and without its
    sources or an abstention's why, which are about the reply, not part of the answer."""
    text = reply.split(SOURCES_HEADING)[0].split(CLOSEST_HEADING)[0].split(WHY_OPENING)[0]
    for opening in ("_searched for: ", "_Note: "):
        if text.startswith(opening) and "_\n\n" in text:
            text = text.partition("_\n\n")[2]
    return text


def where(source: Source, base: str = "") -> str:
    """Where a source lives, a file as the URL of its /files/ route on the server at `base`
    (a client elsewhere cannot open the server's path); without `base`, as Source says."""
    if base and source.link is None and uri_is_path(source.hit.uri):
        return base.rstrip("/") + file_link(source.hit.uri)
    return source.where


def footer(answer: Answer, base: str = "", scope: tuple[str, ...] = ()) -> str:
    """The sources: cited ('[n] label — where') or, when it abstained, the closest and why it
    abstained (the words the CLI and the page use; `scope`: the sources the asker's token
    searches, if it is limited); a file as a link to the server at `base` when given."""
    view = shown(answer)
    if view.closest:
        lines = [f"- {s.line(where(s, base))}" for s in view.sources]
        closest = CLOSEST_HEADING + "\n".join(lines) if lines else ""
        # view.why is "(…)": WHY_OPENING holds its "(" so the history can cut it off.
        why = f"{WHY_OPENING}{view.why[1:-1]}{token_scope(scope)})_" if view.why else ""
        return closest + why
    lines = [s.line(where(s, base)) for s in view.sources]
    # What a newer source changed, before the sources it cites.
    updated = "\n\n" + "\n".join(f"_{u}_" for u in answer.updated.splitlines())
    return (updated if answer.updated else "") + (
        SOURCES_HEADING + "\n".join(lines) if lines else ""
    )


def markdown(answer: Answer, base: str = "", scope: tuple[str, ...] = ()) -> str:
    return body(answer) + footer(answer, base, scope)
