"""Kill -9 an ingest at random fault points; after each kill the knowledge base must re-open and a
re-run must leave database == vector index == BM25 index, equal to a clean ingest of the corpus.

    python benchmarks/faults.py [--kills 50] [--seed 11] [--cli]

Each trial edits the corpus first (adds, changes and deletes files, seeded), so kills land in
updates and removals too. Where to kill: a traced run on a copy of the knowledge base counts the
fault points this very ingest reaches (kbqa/faults.py: parse, embed, commit, committed, remove,
index-save, bm25-save, bm25-pointer, run-end); a stage is drawn, then one of its occurrences.
The ingest killed is the library in a forked child process, or with --cli `python -m kbqa
ingest` (slower: each start imports the parsers again). tests/test_faults.py runs a short version.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from kbqa import faults
from kbqa.app import KnowledgeBase
from kbqa.retrieval.index import VectorIndex
from kbqa.retrieval.lexical import LexicalIndex
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow

ROOT = Path(__file__).resolve().parents[1]
_TEXT = """deploy rollback canary database replica backup restore queue consumer lag alert pager
runbook owner service port token vault rotate staging production cluster node shard"""
WORDS = _TEXT.split()


def settings_for(home: Path, **changes) -> Settings:
    """Fast settings: the hash embedder and small batches, so one ingest has many batches."""
    return Settings(home=home, embedding_model="hash", embed_batch_size=2, device="cpu", **changes)


def page(rng: random.Random, name: str) -> str:
    sections = []
    for s in range(rng.randint(1, 4)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))
        sections.append(f"## Section {s} of {name}\n\n{name} {words}.\n")
    return f"# {name}\n\n" + "\n".join(sections)


def make_corpus(root: Path, rng: random.Random, files: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"page-{i:03}.md").write_text(page(rng, f"page-{i:03}"))


def mutate(root: Path, rng: random.Random) -> None:
    """Change, delete and add a few files."""
    existing = sorted(root.glob("*.md"))
    for path in rng.sample(existing, min(len(existing), rng.randint(0, 3))):
        path.write_text(page(rng, path.stem + "-v" + str(rng.randint(0, 9999))))
    for path in rng.sample(existing, min(len(existing), rng.randint(0, 2))):
        path.unlink(missing_ok=True)
    for _ in range(rng.randint(0, 3)):
        name = f"page-{rng.randint(0, 999):03}"
        (root / f"{name}.md").write_text(page(rng, name))


def contents(kb: KnowledgeBase) -> list[tuple[str, int, str, str]]:
    with kb.store.session() as s:
        rows = s.execute(
            select(DocumentRow.uri, ChunkRow.position, ChunkRow.heading, ChunkRow.text).join(
                ChunkRow.document
            )
        ).all()
    return sorted((Path(u).name, p, h, t) for u, p, h, t in rows)


def trace(home: Path, corpus: Path, scratch: Path) -> dict[str, int]:
    """The fault points an ingest of `corpus` into `home` reaches, counted on a copy."""
    shutil.rmtree(scratch, ignore_errors=True)
    if home.exists():
        shutil.copytree(home, scratch)
    kb = KnowledgeBase(settings_for(scratch, fault_at="trace"))
    kb.ingest([corpus])
    counts = faults.reached()
    faults.arm("")
    kb.store.engine.dispose()
    shutil.rmtree(scratch, ignore_errors=True)
    return counts


def _ingest_in_child(home: str, corpus: str, spec: str) -> None:
    KnowledgeBase(settings_for(Path(home), fault_at=spec)).ingest([Path(corpus)])


def kill_at(home: Path, corpus: Path, spec: str, cli: bool = False) -> int:
    """Run an ingest armed to SIGKILL itself at `spec`; its exit code (-9 when killed)."""
    if cli:
        env = {
            **os.environ,
            "KBQA_HOME": str(home),
            "KBQA_EMBEDDING_MODEL": "hash",
            "KBQA_EMBED_BATCH_SIZE": "2",
            "KBQA_DEVICE": "cpu",
            "KBQA_FAULT_AT": spec,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        done = subprocess.run(
            [sys.executable, "-m", "kbqa", "ingest", str(corpus)],
            env=env,
            capture_output=True,
            timeout=600,
        )
        return done.returncode
    child = multiprocessing.get_context("fork").Process(
        target=_ingest_in_child, args=(str(home), str(corpus), spec)
    )
    child.start()
    child.join(600)
    return child.exitcode


def saved_ids(home: Path, dim: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(ids in the saved vector index, ids in the saved BM25 index or None)."""
    vector = VectorIndex.load(home / "index.faiss", dim).ids()
    try:
        import json

        name = json.loads((home / "bm25" / "current.json").read_text())["name"]
        lexical = np.load(home / "bm25" / name / "ids.npy")
    except (OSError, ValueError, KeyError):
        lexical = None
    return np.sort(vector), lexical


def check(kb: KnowledgeBase, reference: KnowledgeBase | None = None) -> list[str]:
    """What is wrong with kb: database, vector index and BM25 index out of step, duplicates,
    or (given a reference) documents lost, duplicated or different."""
    problems = []
    snapshot = kb.refresh()
    db = np.sort(kb.store.chunk_ids())
    if not np.array_equal(np.sort(snapshot.index.ids()), db):
        problems.append("vector index != database")
    if not np.array_equal(np.sort(snapshot.lexical.ids), db):
        problems.append("BM25 index != database")
    if not np.array_equal(np.sort(np.array(list(snapshot.chunks), dtype=np.int64)), db):
        problems.append("snapshot chunks != database")
    with kb.store.session() as s:
        twice = s.execute(
            select(ChunkRow.document_id, ChunkRow.position)
            .group_by(ChunkRow.document_id, ChunkRow.position)
            .having(func.count() > 1)
        ).all()
    if twice:
        problems.append(f"{len(twice)} chunk positions stored twice")
    if len(db):
        ids, vectors = kb.store.embeddings(db[:: max(1, len(db) // 5)])
        found = snapshot.index.search(vectors, 1)[1][:, 0]
        if not np.array_equal(found, ids):
            problems.append("a chunk's own vector does not find it")
        if LexicalIndex.load(kb.lexical_dir, db, kb.settings.bm25_stemmer) is None:
            problems.append("no saved BM25 index for the database's chunks")
    if reference is not None:
        mine, theirs = contents(kb), contents(reference)
        if mine != theirs:
            lost = len(set(theirs) - set(mine))
            extra = len(set(mine) - set(theirs))
            problems.append(f"differs from a clean ingest: {lost} chunks lost, {extra} extra")
    return problems


def run_trials(
    kills: int, seed: int, work: Path, cli: bool = False, files: int = 30, log=print
) -> dict:
    """The benchmark: `kills` trials; returns counts by stage and the problems found."""
    rng = random.Random(seed)
    corpus, home = work / "corpus", work / "home"
    make_corpus(corpus, rng, files)
    KnowledgeBase(settings_for(home)).ingest([corpus])  # a knowledge base to crash into
    stages: Counter[str] = Counter()
    problems: list[str] = []
    killed = 0
    for trial in range(kills):
        mutate(corpus, rng)
        counts = trace(home, corpus, work / "scratch")
        stage = rng.choice(sorted(counts))
        spec = f"{stage}:{rng.randint(1, counts[stage])}"
        code = kill_at(home, corpus, spec, cli)
        killed += code == -9
        stages[stage] += 1
        found = [] if code == -9 else [f"exit code {code}, not killed"]
        # Re-open: the knowledge base must be whole before any re-run.
        kb = KnowledgeBase(settings_for(home))
        found += [f"after the kill: {p}" for p in check(kb)]
        last = kb.store.last_run()
        # BM25 is saved after the run is recorded: a cache of the database, rebuilt if lost.
        expected = "ok" if stage.startswith("bm25") else "interrupted"
        if last.status != expected:
            found.append(f"the killed run is {last.status!r}, not {expected!r}")
        report = kb.ingest([corpus])
        reference_home = work / "reference"
        shutil.rmtree(reference_home, ignore_errors=True)
        reference = KnowledgeBase(settings_for(reference_home))
        reference.ingest([corpus])
        found += [f"after the re-run: {p}" for p in check(kb, reference)]
        if report.failed or kb.store.last_run().status != "ok":
            found.append(f"the re-run failed: {report.failed}")
        vector, lexical = saved_ids(home, 256)
        db = np.sort(kb.store.chunk_ids())
        if not np.array_equal(vector, db) or lexical is None or not np.array_equal(lexical, db):
            found.append("saved files differ from the database after the re-run")
        for engine in (kb.store.engine, reference.store.engine):
            engine.dispose()  # no open SQLite connection may cross the next fork
        problems += [f"trial {trial} ({spec}): {p}" for p in found]
        log(f"trial {trial:2} kill at {spec:16} -> {'ok' if not found else '; '.join(found)}")
    return {"trials": kills, "killed": killed, "stages": dict(stages), "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--cli", action="store_true", help="kill `python -m kbqa ingest`")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_trials(args.kills, args.seed, Path(tmp), args.cli, args.files)
    print(
        f"\n{result['killed']} of {result['trials']} ingests killed with SIGKILL "
        f"({'kbqa ingest' if args.cli else 'library in a forked process'}), seed {args.seed}"
    )
    print("kills by stage: " + ", ".join(f"{k} {v}" for k, v in sorted(result["stages"].items())))
    print(
        f"survived (re-opened whole, re-run equal to a clean ingest): "
        f"{result['trials'] - len({p.split(':')[0] for p in result['problems']})} of "
        f"{result['trials']}; {time.perf_counter() - started:.0f} s"
    )
    for problem in result["problems"]:
        print("  " + problem)
    sys.exit(1 if result["problems"] else 0)


if __name__ == "__main__":
    main()
