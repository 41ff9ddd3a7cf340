"""A training example in the answerer's exact prompt format (`build_messages(question, hits)`)
and the reply the answerer wants — sentences ending in `[n]` for the passage they come from, or
the abstention reply — and the JSONL files they are kept in, one example a line: source, id,
question, messages, reply, gold (the passage numbers the reply cites)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kbqa.assistant import support
from kbqa.assistant.prompt import build_messages
from kbqa.errors import KbqaError
from kbqa.types import Hit

# The prompt tells the model to reply exactly this; the answerer reads it as "not in the passages".
ABSTAIN_REPLY = "I don't know."
# The share of halueval questions that also get an abstention example (the question without its
# gold paragraph): 0.15 makes ~13 % of those examples abstentions. At 0.25 (a fifth of the
# data) the tuned SmolLM2 said "I don't know" to 84 % of answerable questions (docs/tuning.md).
# The user turn's length cap: long Slack chunks would otherwise make the slowest examples.
MAX_PROMPT_CHARS = 2400


def cite(answer: str, n: int) -> str:
    """The answer with every sentence ending in `[n]`, the way the answerer renders citations."""
    out = []
    for sentence in support.split_sentences(support.strip_citations(answer)):
        body = sentence.rstrip()
        end = body[-1] if body[-1] in ".!?" else "."
        body = body.rstrip(".!?").rstrip()
        if body:
            out.append(f"{body} [{n}]{end}")
    return " ".join(out)


def answer_reply(answer: str, passage: str, n: int) -> str:
    """A training target in the form the answerer asks for: the direct answer, then the
    passage's sentence that states it, each cited [n] ("Drama [2]. The Great Santini is a 1979
    American drama film [2]."). A reference that is a bare phrase thus still teaches the model
    to write full, cited sentences; without such a sentence the reply is the cited answer."""
    direct = cite(answer[:1].upper() + answer[1:], n)
    wanted = _normal(answer)
    for sentence in support.split_sentences(passage):
        said = _normal(sentence)
        if wanted and f" {wanted} " in f" {said} " and said != wanted and len(sentence) <= 300:
            return f"{direct} {cite(sentence, n)}"
    return direct


def write_examples(examples: list[dict[str, Any]], out: Path) -> None:
    """JSONL, one example a line, written whole or not at all."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        for example in examples:
            f.write(json.dumps(example, ensure_ascii=False) + "\n")
    tmp.replace(out)


def read_examples(path: Path) -> list[dict[str, Any]]:
    """The examples of a file written by `build_training_data`."""
    if not path.is_file():
        raise KbqaError(f"no training data at {path}: run `kbqa tune data` first")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _example(
    source: str,
    id: str,
    question: str,
    hits: list[Hit],
    reply: str,
    gold: list[int],
) -> dict[str, Any]:
    return {
        "source": source,
        "id": id,
        "question": question,
        "messages": build_messages(question, hits),
        "reply": reply,
        "gold": gold,
    }


def _fit(hits: list[Hit], keep: set[int], question: str, max_chars: int) -> list[Hit] | None:
    """Drop passages not in `keep` (chunk ids), last first, until the prompt fits; None if the
    kept ones alone do not fit."""
    hits = list(hits)
    while len(build_messages(question, hits)[-1]["content"]) > max_chars:
        droppable = [i for i, h in enumerate(hits) if h.chunk_id not in keep]
        if not droppable:
            return None
        hits.pop(droppable[-1])
    return hits


def _normal(text: str) -> str:
    return " ".join(support.words(text))
