"""Commit files into a git repository with dulwich, at a given time and by a given author:
how the freshness tests and benchmarks/freshness.py build a revised runbook's history."""

from __future__ import annotations

import json
from pathlib import Path

from dulwich.repo import Repo


def commit(root: Path, files: dict[str, str], when: float, author: str, message: str) -> bytes:
    """Write `files` (path -> text) under `root` (a repository, made if missing) and commit
    them at `when` (epoch seconds, UTC) as `author`; returns the commit id."""
    repo = Repo(str(root)) if (root / ".git").exists() else Repo.init(str(root), mkdir=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    tree = repo.get_worktree()
    tree.stage(list(files))
    who = f"{author} <{author.split()[0].lower()}@example.com>".encode()
    return tree.commit(
        message.encode(),
        committer=who,
        author=who,
        commit_timestamp=when,
        commit_timezone=0,
        author_timestamp=when,
        author_timezone=0,
    )


def build(dest: Path) -> tuple[Path, Path]:
    """The fixture's git repository (its commits from questions.json, in order) under `dest`,
    and the path of its Slack export: (repository, export)."""
    from kbqa.clock import parse_time

    here = Path(__file__).resolve().parent
    data = json.loads((here / "questions.json").read_text())
    repo = dest / "wiki"
    for step in data["commits"]:
        files = {name: (here / source).read_text() for name, source in step["files"].items()}
        commit(repo, files, parse_time(step["when"]), step["author"], step["message"])
    return repo, here / "slack"


def questions() -> dict:
    return json.loads((Path(__file__).resolve().parent / "questions.json").read_text())


def cue_scores(documents: list, threads: list[dict]) -> dict[str, dict[str, int]]:
    """Per cue: superseded messages it marked rightly (tp), wrongly (fp), and those it should
    have marked and did not (fn), over the fixture's threads (questions.json "threads")."""
    by_ts = {d.metadata.get("thread_ts"): d for d in documents if d.metadata.get("thread_ts")}
    scores: dict[str, dict[str, int]] = {}
    for thread in threads:
        found = {s["ts"]: s["cue"] for s in by_ts[thread["thread_ts"]].metadata["superseded"]}
        for ts, cue in found.items():
            row = scores.setdefault(cue, {"tp": 0, "fp": 0, "fn": 0})
            row["tp" if ts in thread["superseded"] else "fp"] += 1
        for ts in thread["superseded"]:
            if ts not in found:
                scores.setdefault(thread["cue"], {"tp": 0, "fp": 0, "fn": 0})["fn"] += 1
    return scores
