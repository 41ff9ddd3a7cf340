"""Ingest on every core: the wall time of a fresh ingest as before issue 34 (one parse worker,
the packaged ONNX embedder on onnxruntime's default threads: one per core) and with today's
defaults (`ingest_workers` = 0: one parse worker per core; `embed_threads` as set), alternated in
one run, on the held-in corpora: examples/handbook and the Python docs' FAQ, how-tos and
tutorial (what the python-faq eval is built from; Debian's python3.11-doc). Checks that both
give the same documents and chunks, and vectors within 1e-3.

    python benchmarks/ingest_workers.py [--rounds 2] [--fakes] [--corpus handbook|python-docs]
        [--embed-threads N]

Default: the packaged embedder (the whole ingest, as a user waits for it); --fakes embeds with
the hash embedder, so the figure is parsing alone. --embed-threads N runs the "now" arm's
embedder on N threads instead of the setting's. Each run prints where its time went
(the ingest's stages; with several workers `parse` is their sum).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.ingest.driver import cores
from kbqa.retrieval.embedder import Embedder, HashEmbedder, default_backend
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


def embedder(settings: Settings, fakes: bool) -> Embedder | None:
    """The hash embedder, or the packaged one as the settings make it (None)."""
    if fakes:
        return HashEmbedder()
    backend = default_backend(settings.embedding_model, settings.device)
    if not backend.startswith("onnx-"):
        raise SystemExit(f"this compares the packaged ONNX embedder's threads; here: {backend}")
    return None


def vectors(kb: KnowledgeBase) -> np.ndarray:
    return kb.store.embeddings()[1]


def ingest(
    paths: list[Path], workers: int, threads: int, fakes: bool, cache: Path
) -> tuple[float, list, np.ndarray, int, dict[str, float]]:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.load(home=Path(home)).replace(
            ingest_workers=workers, embed_threads=threads, model_cache=cache
        )
        kb = KnowledgeBase(settings, embedder=embedder(settings, fakes))
        kb.embedder.embed(["load the embedder before the clock starts"])
        started = time.perf_counter()
        report = kb.ingest(paths)
        seconds = time.perf_counter() - started
        return seconds, contents(kb), vectors(kb), report.added, report.stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fakes", action="store_true")
    parser.add_argument("--corpus", choices=["handbook", "python-docs"], help="only this one")
    parser.add_argument("--embed-threads", type=int, help='the "now" arm\'s embedder threads')
    args = parser.parse_args()
    n, defaults = cores(), Settings()
    now = defaults.embed_threads if args.embed_threads is None else args.embed_threads
    arms = {"before": (1, 0), "now": (n, now)}
    print(
        f"cores: {n}; embedder: {'hash (fakes)' if args.fakes else 'packaged'}; "
        + "; ".join(f"{k}: {w} worker(s), embed_threads {t}" for k, (w, t) in arms.items())
    )
    cache = defaults.model_cache
    with tempfile.TemporaryDirectory() as tmp:
        for name, paths in corpora(Path(tmp)).items():
            if args.corpus and name != args.corpus:
                continue
            times: dict[str, list[float]] = {arm: [] for arm in arms}
            seen: dict[str, tuple[list, np.ndarray]] = {}
            # A first, untimed round: the parsers' imports (in this process, then in the fork
            # server that later rounds' workers come from, once threads run) cost once.
            for round_ in range(args.rounds + 1):
                for arm, (workers, threads) in arms.items():
                    seconds, rows, vecs, added, stages = ingest(
                        paths, workers, threads, args.fakes, cache
                    )
                    where = ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if v >= 0.05)
                    print(f"  {name}, {arm}: {seconds:.1f} s ({where})", flush=True)
                    if round_:
                        times[arm].append(seconds)
                    seen[arm] = rows, vecs
            (rows_a, vecs_a), (rows_b, vecs_b) = seen["before"], seen["now"]
            assert rows_a == rows_b, f"{name}: other documents or chunks"
            drift = float(np.abs(vecs_a - vecs_b).max())
            assert drift < 1e-3, f"{name}: vectors differ by {drift:.2g}"
            old, new = statistics.median(times["before"]), statistics.median(times["now"])
            print(
                f"{name}: {added} documents, {len(rows_b)} chunks, vectors within {drift:.1g}; "
                f"before {old:.1f} s, now {new:.1f} s (medians of {args.rounds}): "
                f"{old / new:.2f}x [before: {', '.join(f'{t:.1f}' for t in times['before'])}; "
                f"now: {', '.join(f'{t:.1f}' for t in times['now'])}]"
            )


if __name__ == "__main__":
    main()
