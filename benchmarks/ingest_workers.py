"""Ingest on every core: the wall time of a fresh ingest with one parse worker (today's) and
with one per core (ingest_workers = 0), alternated in one run, on the held-in corpora:
examples/handbook and the Python docs' FAQ, how-tos and tutorial (what the python-faq eval is
built from; Debian's python3.11-doc). Checks that both give the same documents and chunks.

    python benchmarks/ingest_workers.py [--rounds 2] [--fakes] [--corpus handbook|python-docs]
        [--embed-threads N]

Default: the packaged embedder (the whole ingest, as a user waits for it); --fakes embeds with
the hash embedder, so the figure is mostly parsing. --embed-threads N runs the packaged ONNX
embedder on N threads (onnxruntime's default is one per core, and its threads spin while they
wait): with 1, the parse workers have the other core while the ingest process embeds. Each run
prints where its time went (the ingest's stages; with several workers `parse` is their sum).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.ingest.driver import cores
from kbqa.retrieval.embedder import Embedder, HashEmbedder, OnnxEmbedder, default_backend
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow

ROOT = Path(__file__).resolve().parents[1]
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/_sources")


def corpora(tmp: Path) -> dict[str, list[Path]]:
    found = {"handbook": [ROOT / "examples" / "handbook"]}
    if PYTHON_DOCS.is_dir():
        # Copied, so that uris are alike in every run's home (and no run reads another's).
        target = tmp / "python-docs"
        for part in ("faq", "howto", "tutorial"):
            shutil.copytree(PYTHON_DOCS / part, target / part)
        found["python-docs"] = [target]
    return found


def contents(kb: KnowledgeBase) -> list[tuple]:
    with kb.store.session() as s:
        rows = s.execute(
            select(DocumentRow.uri, ChunkRow.id, ChunkRow.text)
            .join(ChunkRow, ChunkRow.document_id == DocumentRow.id)
            .order_by(ChunkRow.id)
        ).all()
    return [tuple(r) for r in rows]


def embedder(settings: Settings, fakes: bool, threads: int | None) -> Embedder | None:
    """The hash embedder, the packaged one as the settings make it (None), or the packaged ONNX
    one on `threads` threads."""
    if fakes:
        return HashEmbedder()
    if threads is None:
        return None
    s = settings
    backend = default_backend(s.embedding_model, s.device)
    if not backend.startswith("onnx-"):
        raise SystemExit(f"--embed-threads runs the packaged ONNX embedder; here it is {backend}")
    return OnnxEmbedder(backend, s.model_cache, s.embed_batch_size, threads=threads)


def ingest(
    paths: list[Path], workers: int, fakes: bool, cache: Path, threads: int | None = None
) -> tuple[float, list, int, dict[str, float]]:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.load(home=Path(home)).replace(ingest_workers=workers)
        if not fakes:
            settings = settings.replace(model_cache=cache)
        kb = KnowledgeBase(settings, embedder=embedder(settings, fakes, threads))
        kb.embedder.embed(["load the embedder before the clock starts"])
        started = time.perf_counter()
        report = kb.ingest(paths)
        seconds = time.perf_counter() - started
        return seconds, contents(kb), report.added, report.stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fakes", action="store_true")
    parser.add_argument("--corpus", choices=["handbook", "python-docs"], help="only this one")
    parser.add_argument("--embed-threads", type=int, help="the packaged embedder's threads")
    args = parser.parse_args()
    n = cores()
    threads = f", {args.embed_threads} thread(s)" if args.embed_threads else ""
    print(f"cores: {n}; embedder: {'hash (fakes)' if args.fakes else 'packaged'}{threads}")
    cache = Settings().model_cache
    with tempfile.TemporaryDirectory() as tmp:
        for name, paths in corpora(Path(tmp)).items():
            if args.corpus and name != args.corpus:
                continue
            times: dict[int, list[float]] = {1: [], n: []}
            seen: dict[int, list] = {}
            # A first, untimed round: the parsers' imports (in this process, then in the fork
            # server that later rounds' workers come from, once threads run) cost once.
            for round_ in range(args.rounds + 1):
                for workers in (1, n):
                    seconds, rows, added, stages = ingest(
                        paths, workers, args.fakes, cache, args.embed_threads
                    )
                    where = ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if v >= 0.05)
                    print(f"  {name}, {workers} worker(s): {seconds:.1f} s ({where})", flush=True)
                    times[workers].append(seconds)
                    seen[workers] = rows
                if round_ == 0:
                    times = {1: [], n: []}
            assert seen[1] == seen[n], f"{name}: other documents or chunks with {n} workers"
            one, many = statistics.median(times[1]), statistics.median(times[n])
            print(
                f"{name}: {added} documents, {len(seen[n])} chunks; 1 worker {one:.1f} s, "
                f"{n} workers {many:.1f} s (medians of {args.rounds}): {one / many:.2f}× "
                f"[runs 1: {', '.join(f'{t:.1f}' for t in times[1])}; "
                f"{n}: {', '.join(f'{t:.1f}' for t in times[n])}]"
            )


if __name__ == "__main__":
    main()
