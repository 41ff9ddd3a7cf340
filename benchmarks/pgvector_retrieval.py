"""python-faq retrieval with vector_backend "pgvector" against the FAISS default, in one run.

The corpus is embedded once into the FAISS knowledge base (SQLite); its rows are then copied
into an empty PostgreSQL database (no re-embedding), and `kbqa eval retrieval`'s machinery runs
on three knowledge bases: FAISS + BM25 (today), pgvector (HNSW) + BM25, and pgvector +
PostgreSQL full-text search.

    kbqa --home /tmp/kbqa-pgv eval prepare python-faq
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/pgvector_retrieval.py \\
        --home /tmp/kbqa-pgv
(with-postgres.sh exports KBQA_TEST_POSTGRES_URL; or pass --database-url.)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from kbqa.app import KnowledgeBase
from kbqa.evals.beir import load_beir
from kbqa.evals.retrieval import corpus_source, evaluate_retrieval
from kbqa.retrieval.fusion import NORMALISATION
from kbqa.settings import Settings
from kbqa.store import ChunkRow, DocumentRow, SourceRow, Store
from kbqa.store.tables import MetaRow


def copy_rows(source: Store, target: Store) -> None:
    """Sources, documents, chunks (with embeddings) and meta, ids kept."""
    with source.engine.connect() as read, target.engine.begin() as write:
        for table in (SourceRow, DocumentRow, ChunkRow, MetaRow):
            rows = [dict(r._mapping) for r in read.execute(select(table.__table__))]
            for start in range(0, len(rows), 2000):
                write.execute(insert(table.__table__), rows[start : start + 2000])
        for table in ("sources", "documents", "chunks"):
            write.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )


def direct(
    store: Store, data, split: str, embedder, alpha: float, normalise: str = "minmax"
) -> dict:
    """nDCG@10 of each side called directly on one database (no snapshot, no near-duplicate
    collapse): BM25 and PostgreSQL FTS alone, FAISS exact and pgvector HNSW dense, and the
    hybrid (alpha and normalisation, as the retriever's) of pgvector with each lexical side."""
    from kbqa.evals.metrics import retrieval_metrics
    from kbqa.retrieval.fusion import convex
    from kbqa.retrieval.index import VectorIndex
    from kbqa.retrieval.lexical import LexicalIndex
    from kbqa.retrieval.pgvector import PgFullText, PgVectorIndex

    dim = int(store.get_meta("embedding_dim"))
    pg = PgVectorIndex(store, dim)
    pg.repair()  # fills vec and tsv for the copied rows
    ids, vectors = store.embeddings()
    exact = VectorIndex(dim)
    exact.add(ids, vectors)
    row = {int(i): n for n, i in enumerate(ids)}
    with store.session() as s:
        doc_of = {
            c: m["doc_id"]
            for c, m in s.execute(
                select(ChunkRow.id, DocumentRow.meta).join(
                    DocumentRow, ChunkRow.document_id == DocumentRow.id
                )
            )
        }
    qrels = data.qrels[split]
    qids = list(qrels)
    query_vectors = embedder.embed([data.queries[q] for q in qids])
    lexicals = {"bm25": LexicalIndex(store), "postgres-fts": PgFullText(store)}
    runs: dict[str, dict] = {}
    seconds: dict[str, float] = {}

    def record(label: str, qid: str, ranked: list[int], started: float) -> None:
        runs.setdefault(label, {})[qid] = {
            doc_of[i]: float(20 - n) for n, i in enumerate(ranked[:20])
        }
        seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - started

    for qid, vector in zip(qids, query_vectors, strict=True):
        query = data.queries[qid]
        t = time.perf_counter()
        _, found = exact.search(vector[None], 80)
        record("dense-faiss", qid, [int(i) for i in found[0] if i >= 0], t)
        t = time.perf_counter()
        _, found = pg.search(vector[None], 80)
        dense = [int(i) for i in found[0] if i >= 0]
        record("dense-pgvector", qid, dense, t)
        for label, lexical in lexicals.items():
            t = time.perf_counter()
            lexical_ids = [int(i) for i in lexical.search(query, 80)[0]]
            record(label, qid, lexical_ids, t)
            t = time.perf_counter()
            candidates = list(dict.fromkeys(dense + lexical_ids))
            cosine = {i: float(vectors[row[i]] @ vector) for i in candidates}
            scores = lexical.score(query, candidates)
            lexical_scores = dict(zip(candidates, scores.tolist(), strict=True))
            fused = convex(cosine, lexical_scores, alpha, normalise)
            ranked = sorted(fused, key=lambda i: (-fused[i], i))
            record(f"hybrid-pgvector+{label}", qid, ranked, t)
    out = {}
    for label, run in runs.items():
        metrics = retrieval_metrics(qrels, run)
        out[label] = {
            "ndcg@10": round(metrics["ndcg@10"], 3),
            "recall@10": round(metrics["recall@10"], 3),
            "ms_per_query": round(1000 * seconds[label] / len(qids), 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--database-url", default=os.environ.get("KBQA_TEST_POSTGRES_URL", ""))
    parser.add_argument("--split", default="test")
    # "hash" (the test fake) compares the lexical sides in minutes; its dense rows mean nothing.
    parser.add_argument("--embedder", default="", help="embedding_model (default: settings)")
    parser.add_argument(
        "--direct", action="store_true", help="call each side directly (minutes, not tens)"
    )
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("no PostgreSQL: pass --database-url or run through with-postgres.sh")
    data = load_beir(args.home / "datasets" / "python-faq")
    base = Settings.load(home=args.home / "evals" / "python-faq")
    if args.embedder:
        base = base.replace(embedding_model=args.embedder)
    faiss = KnowledgeBase(base)
    t = time.perf_counter()
    if not (args.direct and faiss.store.counts()["documents"] == len(data.corpus)):
        faiss.index_sources([corpus_source(data, "python-faq")])
    print(f"corpus embedded/checked in {time.perf_counter() - t:.0f} s", flush=True)

    url = args.database_url
    name = f"kbqa_bench_pgvector_{(args.embedder or 'default').replace('-', '_').lower()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg_url = url.rsplit("/", 1)[0] + "/" + name
    copy_rows(faiss.store, Store(pg_url))
    if args.direct:
        normalise = NORMALISATION.get(base.fusion, "minmax")
        store = Store(pg_url)
        found = direct(store, data, args.split, faiss.embedder, base.fusion_alpha, normalise)
        print(json.dumps(found, indent=2))
        return

    results = {}
    for label, changes in [
        ("faiss+bm25", {}),
        ("pgvector+bm25", {"vector_backend": "pgvector", "lexical_backend": "bm25"}),
        ("pgvector+fts", {"vector_backend": "pgvector", "lexical_backend": "postgres-fts"}),
    ]:
        if changes:
            changes = {**changes, "database_url": pg_url, "home": args.home / "pg" / label}
        settings = base.replace(**changes)
        kb = faiss if not changes else KnowledgeBase(settings, embedder=faiss.embedder)
        t = time.perf_counter()
        kb.refresh()
        snapshot_s = time.perf_counter() - t
        out = args.home / "reports" / f"pgvector-{label}"
        report = evaluate_retrieval(kb, data, "python-faq", args.split, out)
        results[label] = {
            "snapshot_seconds": round(snapshot_s, 2),
            **{
                r: {"ndcg@10": round(m["ndcg@10"], 3), "recall@10": round(m["recall@10"], 3)}
                for r, m in report.metrics.items()
                if r in ("bm25", "dense", "hybrid")
            },
            "seconds": {r: round(s, 1) for r, s in report.seconds.items()},
        }
        print(label, json.dumps(results[label]), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
