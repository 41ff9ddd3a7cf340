"""The BEIR layout every evaluation set is kept in: corpus.jsonl, queries.jsonl,
qrels/<split>.tsv and answers.jsonl; writing and loading it."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kbqa.errors import KbqaError

_QRELS_HEADER = ["query-id", "corpus-id", "score"]


@dataclass
class BeirDataset:
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> query id -> doc id -> score
    answers: dict[str, dict] = field(default_factory=dict)  # query id -> answer record


def _write(
    folder: Path,
    corpus: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, dict[str, int]]],
    answers: dict[str, dict] | None,
    readme: str,
) -> Path:
    """Write the dataset next to folder and swap it in, so a failed build leaves no half folder."""
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "qrels").mkdir(parents=True)
    _write_jsonl(
        tmp / "corpus.jsonl", ({"_id": d, "title": t, "text": x} for d, (t, x) in corpus.items())
    )
    _write_jsonl(tmp / "queries.jsonl", ({"_id": q, "text": t} for q, t in queries.items()))
    for split, rows in qrels.items():
        with open(tmp / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(_QRELS_HEADER)
            for qid, docs in rows.items():
                writer.writerows([qid, doc_id, score] for doc_id, score in docs.items())
    if answers is not None:
        _write_jsonl(tmp / "answers.jsonl", ({"_id": q, **a} for q, a in answers.items()))
    (tmp / "README.txt").write_text(readme, encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def _write_jsonl(path: Path, records: Iterator[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KbqaError(f"{path}:{n}: not JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise KbqaError(f"{path}:{n}: expected a JSON object")
            yield n, record


def load_beir(folder: Path) -> BeirDataset:
    """Read a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/*.tsv, answers.jsonl)."""
    hint = "build one with `kbqa eval prepare NAME`"
    for part in ("corpus.jsonl", "queries.jsonl", "qrels"):
        if not (folder / part).exists():
            raise KbqaError(f"{folder} is not a BEIR dataset (no {part}): {hint}")
    try:
        corpus = {
            str(r["_id"]): (str(r.get("title") or ""), str(r["text"]))
            for _, r in _read_jsonl(folder / "corpus.jsonl")
        }
        queries = {str(r["_id"]): str(r["text"]) for _, r in _read_jsonl(folder / "queries.jsonl")}
        answers = {}
        if (folder / "answers.jsonl").exists():
            for _, r in _read_jsonl(folder / "answers.jsonl"):
                answers[str(r["_id"])] = {k: v for k, v in r.items() if k != "_id"}
    except KeyError as exc:
        raise KbqaError(f"{folder}: a record has no {exc} field: {hint}") from exc
    qrels = {p.stem: _read_qrels(p, corpus, queries) for p in sorted(folder.glob("qrels/*.tsv"))}
    if not qrels:
        raise KbqaError(f"{folder} is not a BEIR dataset (no qrels/*.tsv): {hint}")
    return BeirDataset(corpus, queries, qrels, answers)


def _read_qrels(
    path: Path, corpus: dict[str, tuple[str, str]], queries: dict[str, str]
) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if n == 1 and row == _QRELS_HEADER:
                continue
            if len(row) != 3 or not row[2].lstrip("-").isdigit():
                raise KbqaError(f"{path}:{n}: expected query-id, corpus-id and an integer score")
            qid, doc_id, score = row
            if qid not in queries or doc_id not in corpus:
                raise KbqaError(f"{path}:{n}: unknown query '{qid}' or document '{doc_id}'")
            qrels.setdefault(qid, {})[doc_id] = int(score)
    return qrels
