"""Documentation sets: a manual that a Debian package ships as (Sphinx) HTML, with questions
written by hand from its pages (tests/data/docset/<name>/questions.jsonl), all held out in test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from kbqa.errors import KbqaError
from kbqa.evals.beir import _read_jsonl, _write

# The questions live beside the tests that check them against the pages (a source checkout).
QUESTIONS = Path(__file__).resolve().parents[3] / "tests" / "data" / "docset"
_SKIP_TAGS = {"head", "script", "style", "nav", "noscript", "template", "footer"}
# Sphinx's navigation and permalinks; a toctree is a list of links to other pages.
_SKIP_CLASSES = {
    "headerlink",
    "sphinxsidebar",
    "related",
    "breadcrumb",
    "footer",
    "footer-relations",
    "toctree-wrapper",
}
# Mako's own Sphinx theme marks its header (with an <h1> of its own), sidebar and page links by id.
_SKIP_IDS = {
    "docs-top-navigation-container",
    "fixed-sidebar",
    "narrow-index-nav",
    "docs-bottom-navigation",
    "docs-copyright",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {"p", "div", "li", "tr", "pre", "br", "dt", "dd", "table", "section", "blockquote"}
_NOT_PAGES = {"search.html", "genindex.html", "py-modindex.html", "404.html"}
_FIELDS = {"id": str, "question": str, "answers": list, "gold": list, "kind": str}


@dataclass(frozen=True)
class DocSet:
    package: str  # the Debian package that ships the manual
    root: Path  # its HTML folder
    version: str  # the version the questions were written from


DOCSETS = {
    "borg-docs": DocSet("borgbackup-doc", Path("/usr/share/doc/borgbackup/html"), "1.2.4-1"),
    "flask-docs": DocSet(
        "python-flask-doc", Path("/usr/share/doc/python-flask-doc/html"), "2.2.2-3"
    ),
    "supervisor-docs": DocSet("supervisor-doc", Path("/usr/share/doc/supervisor/html"), "4.2.5-1"),
    "click-docs": DocSet(
        "python-click-doc", Path("/usr/share/doc/python-click-doc/html"), "8.1.3-2"
    ),
    "requests-docs": DocSet(
        "python-requests-doc", Path("/usr/share/doc/python-requests-doc/html"), "2.28.1+dfsg-1"
    ),
    "jinja-docs": DocSet(
        "python-jinja2-doc", Path("/usr/share/doc/python-jinja2-doc/html"), "3.1.2-1+deb12u3"
    ),
    "werkzeug-docs": DocSet(
        "python-werkzeug-doc", Path("/usr/share/doc/python-werkzeug-doc/html"), "2.2.2-3+deb12u1"
    ),
    "babel-docs": DocSet(
        "python-babel-doc", Path("/usr/share/doc/python-babel-doc/html"), "2.10.3-1"
    ),
    "attrs-docs": DocSet(
        "python-attr-doc", Path("/usr/share/doc/python-attr-doc/html"), "22.2.0-1"
    ),
    "mako-docs": DocSet(
        "python-mako-doc", Path("/usr/share/doc/python-mako-doc/html"), "1.2.4+ds-1"
    ),
    "pygments-docs": DocSet(
        "python-pygments-doc", Path("/usr/share/doc/python-pygments-doc/html"), "2.14.0+dfsg-1"
    ),
    "tornado-docs": DocSet(
        "python-tornado-doc", Path("/usr/share/doc/python-tornado-doc/html"), "6.2.0-3+deb12u4"
    ),
    "aiohttp-docs": DocSet(
        "python-aiohttp-doc", Path("/usr/share/doc/python-aiohttp-doc/html"), "3.8.4-1+deb12u1"
    ),
}


class _PageText(HTMLParser):
    """Sections (heading, text) of an HTML page, from its first <h1> on, without navigation."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[tuple[str, list[str]]] = []
        self._skip: tuple[str, int] | None = None  # (tag, nesting depth) being left out
        self._heading: list[str] | None = None  # the heading's text while inside one
        self._pre = 0
        self._cell = 0  # inside a table cell, where a paragraph does not break the row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            if tag == self._skip[0]:
                self._skip = (tag, self._skip[1] + 1)
            return
        classes = set((dict(attrs).get("class") or "").split())
        if tag in _SKIP_TAGS or classes & _SKIP_CLASSES or dict(attrs).get("id") in _SKIP_IDS:
            self._skip = (tag, 1)
        elif tag in _HEADINGS and (self.sections or tag == "h1"):
            self._heading = []
        elif tag == "pre":
            self._pre += 1
            self._text("\n")
        elif tag in ("td", "th"):
            self._cell += 1
            self._text(" ")
        elif tag in _BLOCKS:
            self._text(" " if self._cell else "\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[0]:
                depth = self._skip[1] - 1
                self._skip = (tag, depth) if depth else None
            return
        if tag in _HEADINGS and self._heading is not None:
            self.sections.append((_squash("".join(self._heading)), []))
            self._heading = None
        elif tag == "pre":
            self._pre = max(self._pre - 1, 0)
            self._text("\n")
        elif tag in ("td", "th"):
            self._cell = max(self._cell - 1, 0)
        elif tag in _BLOCKS:
            self._text(" " if self._cell else "\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._text(data if self._pre else re.sub(r"\s+", " ", data))

    def _text(self, text: str) -> None:
        if self._heading is not None:
            parts = self._heading
        elif self.sections:
            parts = self.sections[-1][1]
        else:
            return  # before the first <h1>: navigation
        if not self._pre and parts and parts[-1][-1:].isspace():
            text = text.lstrip(" ")  # markup between words leaves one space, not several
        if text:
            parts.append(text)


def _squash(text: str) -> str:
    return " ".join(text.split())


def page_sections(html: str) -> list[tuple[str, str]]:
    """(heading, text) of each section of a Sphinx HTML page, in order; sections with no text
    are left out, except the first: the page's <h1> (its heading is the page's title) and the
    text under it, which is empty where an <h2> follows the <h1> at once."""
    parser = _PageText()
    parser.feed(html)
    parser.close()
    sections = []
    for n, (heading, parts) in enumerate(parser.sections):
        lines = (line.rstrip() for line in "".join(parts).splitlines())
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        if text or n == 0:
            sections.append((heading, text))
    return sections


def docset_pages(root: Path) -> dict[str, list[tuple[str, str]]]:
    """Every page of the manual under root (path relative to it -> its sections), without
    Sphinx's search, index and not-found pages."""
    pages = {}
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if rel.name in _NOT_PAGES or any(part.startswith("_") for part in rel.parts):
            continue  # Sphinx's search, index and 404 pages, its _static and _sources folders
        sections = page_sections(path.read_text(encoding="utf-8", errors="replace"))
        if any(text for _, text in sections):  # not a page that is only a table of contents
            pages[rel.as_posix()] = sections
    return pages


def read_questions(path: Path) -> list[dict]:
    """The committed questions, each checked for its fields (answers and gold both empty for
    an unanswerable question, both given for an answerable one)."""

    if not path.is_file():
        raise KbqaError(f"no questions at {path}: the doc sets' questions come with kbqa's source")
    questions, seen = [], set()
    for n, record in _read_jsonl(path):
        for name, kind in _FIELDS.items():
            if not isinstance(record.get(name), kind):
                raise KbqaError(f"{path}:{n}: '{name}' must be a {kind.__name__}")
        if not all(isinstance(x, str) and x for x in record["answers"] + record["gold"]):
            raise KbqaError(f"{path}:{n}: 'answers' and 'gold' hold non-empty strings")
        if bool(record["answers"]) != bool(record["gold"]):
            raise KbqaError(f"{path}:{n}: 'answers' and 'gold' are both empty or both given")
        if record["id"] in seen:
            raise KbqaError(f"{path}:{n}: id '{record['id']}' is used twice")
        seen.add(record["id"])
        questions.append(record)
    return questions


def gold_sections(question: dict, pages: dict[str, list[tuple[str, str]]], path: Path) -> list[str]:
    """Ids (page#n) of the sections of the question's gold pages that hold a reference answer."""
    wanted = [_squash(a) for a in question["answers"]]
    found = []
    for page in question["gold"]:
        if page not in pages:
            raise KbqaError(f"{path}: {question['id']}: gold page {page} is not in the manual")
        found += [
            f"{page}#{n}"
            for n, (_, text) in enumerate(pages[page])
            if any(a in _squash(text) for a in wanted)
        ]
    if not found:
        raise KbqaError(
            f"{path}: {question['id']}: no reference answer occurs on {', '.join(question['gold'])}"
            " (are the installed docs another version?)"
        )
    return found


def build_docset(
    name: str, out_dir: Path, *, source: Path | None = None, questions: Path | None = None
) -> Path:
    """The manual's pages, cut at their headings, as the corpus; the committed questions as
    queries (all in test) with their reference answers; a question's gold documents are the
    sections of its gold pages that hold one of its answers."""

    docset = DOCSETS[name]
    root = source or docset.root
    if not (root / "index.html").is_file():
        raise KbqaError(
            f"{name} needs the Debian package {docset.package}: apt-get install {docset.package}"
        )
    path = questions or QUESTIONS / name / "questions.jsonl"
    pages = docset_pages(root)
    corpus = {
        f"{page}#{n}": (sections[0][0] if n == 0 else f"{sections[0][0]} › {heading}", text)
        for page, sections in pages.items()
        for n, (heading, text) in enumerate(sections)
        if text
    }
    queries, answers, qrels = {}, {}, {}
    for q in read_questions(path):
        queries[q["id"]] = q["question"]
        answers[q["id"]] = {
            "answer": q["answers"][0] if q["answers"] else "",
            "answers": q["answers"],
            "answerable": bool(q["answers"]),
            "split": "test",
            "kind": q["kind"],
            "gold": q["gold"],
        }
        if q["answers"]:
            qrels[q["id"]] = dict.fromkeys(gold_sections(q, pages, path), 1)
    unanswerable = len(queries) - len(qrels)
    readme = f"""{name}: a held-out documentation QA set (BEIR layout).

Built by kbqa from the HTML manual of the Debian package {docset.package} ({root}); the
questions were written for version {docset.version} ({path}).
corpus.jsonl: every page cut at its headings, one document per section ({len(corpus)} documents
from {len(pages)} pages; navigation, scripts and permalinks left out). Titles are
"<page title> › <section heading>"; ids are "<page>#<section number>".
queries.jsonl: {len(queries)} questions written by hand from the pages, {unanswerable} of them
not answered by the manual. All are in the test split: the set is held out, there is no dev.
answers.jsonl: per question its reference answers (strings that occur in its gold page), the
first as "answer", its kind, gold pages, and whether it is answerable.
qrels/test.tsv: the sections of the gold pages that hold a reference answer; unanswerable
questions have no rows.
"""
    return _write(out_dir / name, corpus, queries, {"test": qrels}, answers, readme)
