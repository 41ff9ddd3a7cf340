"""Where training examples come from: resolved Slack threads (the question and the reply its
asker accepted), 👍-rated answers, and halueval-qa's training split (answerable, and with the
gold passage removed for abstention). Each is made in the answerer's prompt format by
tune/examples.py."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kbqa.assistant import support
from kbqa.errors import KbqaError
from kbqa.evals.beir import BeirDataset, load_beir
from kbqa.evals.datasets import prepare
from kbqa.evals.retrieval import corpus_source
from kbqa.ingest.slack import RESOLVED_REACTIONS
from kbqa.retrieval.access import Audience, Scope
from kbqa.store import ChunkRow, DocumentRow, FeedbackRow
from kbqa.tune.examples import (
    ABSTAIN_REPLY,
    MAX_PROMPT_CHARS,
    _example,
    _fit,
    _normal,
    answer_reply,
    cite,
    write_examples,
)
from kbqa.types import Hit

log = logging.getLogger(__name__)

ABSTAIN_FRACTION = 0.15
SOURCES = ("slack", "feedback", "halueval", "halueval-abstain")
HALUEVAL = "halueval-qa"


def build_training_data(
    kb,
    out: Path,
    *,
    halueval_dir: Path | None = None,
    halueval_kb=None,
    k: int = 4,
    seed: int = 13,
    abstain_fraction: float = ABSTAIN_FRACTION,
    halueval_limit: int | None = None,
    include_private: bool = False,
    max_prompt_chars: int = MAX_PROMPT_CHARS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write training examples to `out` (JSONL) and return the count per source.

    `kb` gives Slack threads and 👍 feedback (None: skip them). `halueval_dir` is the prepared
    dataset (built there if missing) and `halueval_kb` a KnowledgeBase to index its corpus in,
    for distractors (both None: skip halueval). Private Slack content is left out unless
    `include_private`: a tuned model can repeat what it was trained on, in any channel.
    `progress(done, total)` is called per halueval question."""
    rng = random.Random(seed)
    examples: list[dict[str, Any]] = []
    if kb is not None and kb.store.counts()["chunks"]:
        examples += slack_examples(kb, k, rng, include_private, max_prompt_chars)
        examples += feedback_examples(kb, k, include_private, max_prompt_chars)
    held_out: set[str] = set()
    if halueval_dir is not None and halueval_kb is not None:
        if not (halueval_dir / "corpus.jsonl").exists():
            prepare(HALUEVAL, halueval_dir.parent)
        dataset = load_beir(halueval_dir)
        held_out = evaluation_questions(dataset)
        examples += halueval_examples(
            dataset,
            halueval_kb,
            k,
            rng,
            abstain_fraction,
            halueval_limit,
            max_prompt_chars,
            progress,
        )
    if not examples:
        # Refused before writing: an earlier train.jsonl is kept, not replaced by nothing.
        raise KbqaError("no training examples: ingest Slack threads or include halueval-qa")
    leaked = {e["question"] for e in examples} & held_out
    if leaked:
        raise KbqaError(f"{len(leaked)} dev/test questions reached the training data")
    write_examples(examples, out)
    counts = {source: sum(e["source"] == source for e in examples) for source in SOURCES}
    log.info("wrote %d training examples to %s: %s", len(examples), out, counts)
    return counts


# ---------------------------------------------------------------- Slack threads


def thread_messages(text: str, authors: list[str]) -> list[str] | None:
    """The bodies of a thread's messages, split out of its text ("author: body" blocks joined by
    blank lines) by the known sequence of authors; None if the text does not match it."""
    bodies, start = [], 0
    for i, author in enumerate(authors):
        prefix = f"{author}: "
        if i == 0:
            if not text.startswith(prefix):
                return None
            at = 0
        else:
            at = text.find(f"\n\n{prefix}", start)
            if at < 0:
                return None
            bodies.append(text[start:at].strip())
            at += 2
        start = at + len(prefix)
    bodies.append(text[start:].strip())
    return bodies


def accepted_reply(messages: list[dict[str, Any]]) -> int | None:
    """Index of the accepted reply: one with a ✅ (most reacted first), else the most reacted;
    only replies by someone other than the asker count, and only with a reaction."""
    asker = messages[0]

    def by_asker(m: dict[str, Any]) -> bool:
        if m.get("user") and asker.get("user"):
            return m["user"] == asker["user"]
        return m.get("author") == asker.get("author")

    candidates = [
        (
            any(r in RESOLVED_REACTIONS for r in m.get("reactions", {})),
            sum(m["reactions"].values()),
            -i,
            i,
        )
        for i, m in enumerate(messages)
        if i > 0 and not by_asker(m) and m.get("reactions")
    ]
    return max(candidates)[3] if candidates else None


def slack_examples(
    kb,
    k: int,
    rng: random.Random,
    include_private: bool = False,
    max_chars: int = MAX_PROMPT_CHARS,
) -> list[dict[str, Any]]:
    """Resolved Slack threads: the parent message asks, the accepted reply answers, citing the
    thread's own chunk among the passages retrieved for the question."""
    with kb.store.session() as s:
        documents = s.execute(select(DocumentRow.id, DocumentRow.uri, DocumentRow.meta)).all()
    allow = None if include_private else _PUBLIC
    out = []
    for doc_id, uri, meta in documents:
        meta = meta or {}
        if meta.get("kind") != "slack" or not meta.get("thread_ts") or not meta.get("messages"):
            continue
        if meta.get("private") and not include_private:
            continue
        with kb.store.session() as s:
            chunks = s.execute(
                select(ChunkRow.id, ChunkRow.text)
                .where(ChunkRow.document_id == doc_id)
                .order_by(ChunkRow.position)
            ).all()
        messages = meta["messages"]
        bodies = thread_messages("\n\n".join(t for _, t in chunks), [m["author"] for m in messages])
        chosen = accepted_reply(messages) if bodies else None
        if chosen is None:
            continue
        question, answer = bodies[0], bodies[chosen]
        block = f"{messages[chosen]['author']}: {answer}"[:60]
        own = next((cid for cid, text in chunks if block in text), chunks[0][0])
        hits = kb.retriever.search(question, k, allow)
        if own not in {h.chunk_id for h in hits}:
            [own_hit] = kb.retriever.hits([own], [0.0])
            hits = hits[: k - 1]
            hits.insert(rng.randrange(len(hits) + 1), own_hit)
        hits = _fit(hits, {own}, question, max_chars)
        if hits is None:
            continue
        n = 1 + next(i for i, h in enumerate(hits) if h.chunk_id == own)
        out.append(_example("slack", uri, question, hits, cite(answer, n), [n]))
    return out


def _public(hit: Hit) -> bool:
    return not hit.metadata.get("private")


# The same rule as a Scope, which the retriever applies per document before ranking.
_PUBLIC = Scope(Audience(public_only=True))


# ---------------------------------------------------------------- 👍 feedback


def feedback_examples(
    kb, k: int, include_private: bool = False, max_chars: int = MAX_PROMPT_CHARS
) -> list[dict[str, Any]]:
    """Answers rated 👍: their cited documents (the chunk closest to the answer) as passages
    [1]…[m], in citation order, then retrieved ones; the answer as it was given."""
    with kb.store.session() as s:
        rows = s.scalars(select(FeedbackRow).where(FeedbackRow.value > 0)).all()
    allow = None if include_private else _PUBLIC
    out = []
    for row in rows:
        if not include_private and _given_in_private(row):
            continue
        uris = [c.get("uri", "") for c in row.citations or []]
        cited = [n for s in support.split_sentences(row.answer) for n in support.citations(s)]
        # A truncated answer (the button carries at most 900 characters) ends without a mark.
        if not uris or not cited or max(cited) > len(uris):
            continue
        if not re.search(r"\[\d+\]\W*$", row.answer.strip()):
            continue
        hits = [_closest_chunk(kb, uri, row.answer) for uri in uris]
        if any(h is None for h in hits):
            continue
        if not include_private and not all(_public(h) for h in hits):
            continue
        ids = {h.chunk_id for h in hits}
        more = [h for h in kb.retriever.search(row.question, k + len(hits), allow)]
        hits += [h for h in more if h.chunk_id not in ids][: max(0, k - len(hits))]
        hits = _fit(hits, ids, row.question, max_chars)
        if hits is None:
            continue
        out.append(
            _example("feedback", f"feedback:{row.id}", row.question, hits, row.answer, cited)
        )
    return out


def _given_in_private(row: FeedbackRow) -> bool:
    """Feedback from a private channel or a DM; a Slack row from before kbqa recorded that
    counts as private (fail closed), the web page and the command line as not."""
    if row.private is not None:
        return bool(row.private)
    return row.channel not in ("", "web")


def _closest_chunk(kb, uri: str, answer: str) -> Hit | None:
    with kb.store.session() as s:
        chunks = s.execute(
            select(ChunkRow.id, ChunkRow.text)
            .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
            .where(DocumentRow.uri == uri)
        ).all()
    if not chunks:
        return None
    wanted = support.content_words(support.strip_citations(answer))
    best = max(chunks, key=lambda c: len(wanted & set(support.words(c[1]))))
    return kb.retriever.hits([best[0]], [0.0])[0]


# ---------------------------------------------------------------- halueval-qa


def evaluation_questions(dataset: BeirDataset) -> set[str]:
    """The text of every question that is not in the training split (dev, test, unanswerable)."""
    held = {q for q, record in dataset.answers.items() if record.get("split") != "train"}
    held |= {q for split, qrels in dataset.qrels.items() if split != "train" for q in qrels}
    return {dataset.queries[q] for q in held if q in dataset.queries}


def halueval_examples(
    dataset: BeirDataset,
    kb,
    k: int,
    rng: random.Random,
    abstain_fraction: float = ABSTAIN_FRACTION,
    limit: int | None = None,
    max_chars: int = MAX_PROMPT_CHARS,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Training-split questions: the gold paragraph at a random position among retrieved
    distractors, answered "<answer> [n]."; for a seeded share, also the same question without
    the gold paragraph, answered with the abstention reply."""
    train = dataset.qrels.get("train")
    if not train:
        raise KbqaError("the halueval-qa dataset has no training split: rebuild it")
    held_out = evaluation_questions(dataset)
    kb.index_sources([corpus_source(dataset, HALUEVAL)])
    qids = sorted(train)
    rng.shuffle(qids)
    if limit is not None:
        qids = qids[:limit]
    out = []
    for done, qid in enumerate(qids):
        if progress:
            progress(done, len(qids))
        record = dataset.answers.get(qid, {})
        # The split is checked twice on purpose: by id here, by text before writing.
        if record.get("split", "train") != "train" or any(
            qid in dataset.qrels.get(split, {}) for split in ("dev", "test")
        ):
            raise KbqaError(f"halueval-qa question {qid} is in the training and evaluation split")
        question, answer = dataset.queries[qid], str(record.get("answer", "")).strip()
        if not answer or question in held_out:
            continue
        gold_uri = f"beir:{HALUEVAL}:{next(iter(train[qid]))}"
        retrieved = kb.retriever.search(question, k + 1)
        distractors = [h for h in retrieved if h.uri != gold_uri]
        gold = next((h for h in retrieved if h.uri == gold_uri), None) or _hit_by_uri(kb, gold_uri)
        if gold is None:
            continue
        hits = distractors[: k - 1]
        hits.insert(rng.randrange(len(hits) + 1), gold)
        hits = _fit(hits, {gold.chunk_id}, question, max_chars)
        if hits is not None:
            n = 1 + hits.index(gold)
            reply = answer_reply(answer, gold.text, n)
            out.append(_example("halueval", qid, question, hits, reply, [n]))
        # Only when no distractor happens to contain the answer: then "I don't know" is right.
        lacking = distractors[:k]
        if rng.random() < abstain_fraction and not any(
            _normal(answer) in _normal(h.text) for h in lacking
        ):
            lacking = _fit(lacking, set(), question, max_chars)
            if lacking:
                out.append(_example("halueval-abstain", qid, question, lacking, ABSTAIN_REPLY, []))
    return out


def _hit_by_uri(kb, uri: str) -> Hit | None:
    with kb.store.session() as s:
        chunk_id = s.scalar(
            select(ChunkRow.id)
            .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
            .where(DocumentRow.uri == uri)
        )
    return kb.retriever.hits([chunk_id], [0.0])[0] if chunk_id is not None else None
