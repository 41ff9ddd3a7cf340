"""Dense and full-text search inside PostgreSQL (vector_backend "pgvector").

`PgVectorIndex` stands where the FAISS index stands: the ingest pipeline feeds it (`add` copies
committed embeddings into the `vec` column and fills `tsv`), the snapshot reads it. Searches run
on the live table, so every replica sharing the database sees every ingest; a question's access
filter (`access.Scope`) becomes SQL `WHERE`, applied before the HNSW ranking and the LIMIT.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, and_, cast, false, func, literal, or_, select, text, true
from sqlalchemy.sql import column, table
from sqlalchemy.types import UserDefinedType

from kbqa.retrieval.access import Scope, held
from kbqa.store import Store
from kbqa.store.pgschema import ensure_schema

log = logging.getLogger(__name__)

_chunks = table("chunks", column("id"), column("document_id"), column("vec"), column("tsv"))
_docs = table("documents", column("id"), column("uri"), column("metadata"))
_WORD = re.compile(r"[^\W_]{2,}")


class _Named(UserDefinedType):
    """A PostgreSQL type by name, for CAST (vector, regconfig)."""

    cache_ok = True

    def __init__(self, name: str):
        self.name = name

    def get_col_spec(self, **_kw) -> str:
        return self.name


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


def _ids_param(ids: np.ndarray | list[int]) -> list[int]:
    return [int(i) for i in ids]


class PgVectorIndex:
    """The `vec` column with its HNSW index, behind the vector index's interface."""

    # The retriever hands this index the question's filter (see Retriever._ranked).
    prefilters = True
    use_gpu = False

    def __init__(self, store: Store, dim: int, ef_search: int = 100, fts_config: str = "english"):
        ensure_schema(store, dim)
        self.store, self.dim, self.ef_search, self.fts_config = store, dim, ef_search, fts_config
        self._size: int | None = None

    def __len__(self) -> int:
        if self._size is None:
            with self.store.engine.connect() as conn:
                self._size = int(
                    conn.execute(text("SELECT count(*) FROM chunks WHERE vec IS NOT NULL")).scalar()
                )
        return self._size

    def ids(self) -> np.ndarray:
        """The ids of chunks that have a vector, ascending."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(text("SELECT id FROM chunks WHERE vec IS NOT NULL ORDER BY id"))
            ids = np.array([r[0] for r in rows], dtype=np.int64)
        self._size = len(ids)
        return ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Copy committed embeddings into the search columns (the rows already exist)."""
        if not len(ids):
            return
        params = [
            {"id": int(i), "v": _vector_literal(v)} for i, v in zip(ids, vectors, strict=True)
        ]
        with self.store.engine.begin() as conn:
            conn.execute(text("UPDATE chunks SET vec = CAST(:v AS vector) WHERE id = :id"), params)
            self._fill_tsv(conn, _ids_param(ids))
        self._size = None

    def _fill_tsv(self, conn, ids: list[int]) -> None:
        # Title and headings weigh more than the body, as a reader skims them first.
        conn.execute(
            text(
                "UPDATE chunks c SET tsv = "
                "setweight(to_tsvector(CAST(:cfg AS regconfig), d.title || ' ' || c.heading), 'A')"
                " || to_tsvector(CAST(:cfg AS regconfig), c.text) "
                "FROM documents d WHERE d.id = c.document_id AND c.id = ANY(:ids)"
            ),
            {"cfg": self.fts_config, "ids": ids},
        )

    def remove(self, ids: np.ndarray) -> None:
        # The pipeline deletes the rows themselves; their vectors go with them.
        self._size = None

    def save(self, path: Path) -> None:
        """Nothing to write: the database is the index."""

    def repair(self) -> int:
        """Fill the search columns of chunks committed without them (an ingest that stopped
        between its commit and `add`); returns how many were filled."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, embedding FROM chunks WHERE vec IS NULL OR tsv IS NULL")
            ).all()
        if rows:
            log.info("pgvector: filling the search columns of %d chunks", len(rows))
            for start in range(0, len(rows), 1000):
                part = rows[start : start + 1000]
                self.add(
                    np.array([r[0] for r in part], dtype=np.int64),
                    np.stack([np.frombuffer(r[1], dtype=np.float32) for r in part]),
                )
        return len(rows)

    def refill(self) -> int:
        """Copy every stored embedding into the search columns again (`kbqa reindex`)."""
        with self.store.engine.begin() as conn:
            conn.execute(text("UPDATE chunks SET vec = NULL, tsv = NULL"))
        return self.repair()

    def search(
        self, vectors: np.ndarray, k: int, allow: Callable | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n, k), best first, among the chunks `allow` admits; missing
        neighbours have id -1. An `allow` that is not a Scope is left to the caller."""
        where = sql_filter(allow)
        scores = np.full((len(vectors), k), -np.inf, dtype=np.float32)
        ids = np.full((len(vectors), k), -1, dtype=np.int64)
        with self.store.engine.begin() as conn:
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {int(max(self.ef_search, k))}"))
            # Filters drop rows after the graph walk: keep walking until k rows pass.
            conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            for n, vector in enumerate(vectors):
                q = cast(literal(_vector_literal(vector)), _Named("vector"))
                distance = _chunks.c.vec.op("<#>")(q)
                query = (
                    select(_chunks.c.id, distance)
                    .select_from(_chunks.join(_docs, _docs.c.id == _chunks.c.document_id))
                    .where(_chunks.c.vec.is_not(None), where)
                    .order_by(distance)
                    .limit(k)
                )
                rows = sorted(conn.execute(query).all(), key=lambda r: (r[1], r[0]))
                for m, (chunk_id, negative_ip) in enumerate(rows):
                    ids[n, m], scores[n, m] = chunk_id, -negative_ip
        return scores, ids

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored embeddings of `ids`, in that order (every id must exist)."""
        with self.store.engine.connect() as conn:
            rows = dict(
                conn.execute(
                    text("SELECT id, embedding FROM chunks WHERE id = ANY(:ids)"),
                    {"ids": _ids_param(ids)},
                ).all()
            )
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids])


class PgFullText:
    """PostgreSQL full-text search as the lexical side (lexical_backend "postgres-fts"):
    the `tsv` column with its GIN index, ranked by ts_rank normalised by document length
    (ts_rank_cd, cover density, ranks any-of-the-words queries badly: python-faq nDCG@10 0.014)."""

    prefilters = True

    def __init__(self, store: Store, config: str = "english"):
        self.store, self.config = store, config

    def _tsquery(self, query: str) -> str:
        # Any of the words (plainto_tsquery would demand all of them); PostgreSQL stems them
        # and drops stopwords. Only word characters reach to_tsquery, so its syntax is safe.
        return " | ".join(dict.fromkeys(w.lower() for w in _WORD.findall(query)))

    def search(
        self, query: str, k: int, allow: Callable | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, scores) of the k best matches, best first."""
        terms = self._tsquery(query)
        if not terms or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        tsq = func.to_tsquery(cast(literal(self.config), _Named("regconfig")), terms)
        rank = func.ts_rank(_chunks.c.tsv, tsq, 1)
        query_ = (
            select(_chunks.c.id, rank)
            .select_from(_chunks.join(_docs, _docs.c.id == _chunks.c.document_id))
            .where(_chunks.c.tsv.op("@@")(tsq), sql_filter(allow))
            .order_by(rank.desc(), _chunks.c.id)
            .limit(k)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query_).all()
        return (
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.float32),
        )

    def score(self, query: str, ids: np.ndarray) -> np.ndarray:
        """Scores of the given chunk ids (0 where no word matches)."""
        ids = np.asarray(ids, dtype=np.int64)
        terms = self._tsquery(query)
        if not terms or not len(ids):
            return np.zeros(len(ids), dtype=np.float32)
        with self.store.engine.connect() as conn:
            rows = dict(
                conn.execute(
                    text(
                        "SELECT id, ts_rank(tsv, to_tsquery(CAST(:cfg AS regconfig), :q), 1) "
                        "FROM chunks WHERE id = ANY(:ids)"
                    ),
                    {"cfg": self.config, "q": terms, "ids": _ids_param(ids)},
                ).all()
            )
        return np.array([rows.get(int(i), 0.0) for i in ids], dtype=np.float32)

    def coverage(self, query: str, text_: str) -> float:
        """The IDF-weighted share of the query's (stemmed) words that `text_` contains, as
        LexicalIndex.coverage, with document frequencies from the GIN index."""
        with self.store.engine.connect() as conn:
            terms = [
                r[0]
                for r in conn.execute(
                    text("SELECT lexeme FROM unnest(to_tsvector(CAST(:cfg AS regconfig), :q))"),
                    {"cfg": self.config, "q": query},
                )
            ]
            if not terms:
                return 0.0
            count = conn.execute(text("SELECT count(*) FROM chunks")).scalar() or 0
            frequency = dict(
                conn.execute(
                    text(
                        "SELECT t, (SELECT count(*) FROM chunks "
                        "WHERE tsv @@ CAST(quote_literal(t) AS tsquery)) "
                        "FROM unnest(CAST(:terms AS text[])) t"
                    ),
                    {"terms": terms},
                ).all()
            )
            present = {
                r[0]
                for r in conn.execute(
                    text("SELECT lexeme FROM unnest(to_tsvector(CAST(:cfg AS regconfig), :t))"),
                    {"cfg": self.config, "t": text_},
                )
            }
        weights = {t: np.log((count + 1) / (frequency.get(t, 0) + 0.5)) for t in terms}
        total = sum(weights.values())
        if total <= 0:
            return 0.0
        return float(sum(w for t, w in weights.items() if t in present) / total)


# -- the access filter as SQL ----------------------------------------------------------------


def sql_filter(allow: Callable | None) -> ColumnElement[bool]:
    """`allow` as a condition on the joined documents row; TRUE when there is no filter or
    it is not a Scope (the caller then filters the hits itself)."""
    if not isinstance(allow, Scope):
        return true()
    conditions = []
    if allow.audience is not None:
        conditions.append(_audience(allow))
    if allow.sources:
        conditions.append(or_(false(), *(_matches(rule) for rule in allow.sources)))
    return and_(true(), *conditions)


def _meta(key: str):
    return _docs.c.metadata.op("->>")(key)


def _private():
    # Python's truthiness of the JSON value: false, 0, "" and null (or no key) are public.
    return func.coalesce(_meta("private"), "false").not_in(["false", "0", ""])


def _opens(allow: Scope) -> ColumnElement[bool]:
    """access.opens as SQL: a connector's document is public or names a principal held."""
    from sqlalchemy.dialects.postgresql import JSONB, array

    principals = held(allow.audience, allow.channel_principals)
    access = _docs.c.metadata.op("->")("access")
    guarded = or_(access.is_not(None), func.coalesce(_meta("connector"), "") != "")
    if "*" in principals:
        return true()
    public = func.coalesce(access.op("->>")("public"), "false") == "true"
    granted = [public]
    if principals:
        names = array(sorted(principals))
        for key in ("groups", "users"):
            granted.append(
                func.coalesce(cast(access.op("->")(key), JSONB).op("?|")(names), false())
            )
    return or_(~guarded, *granted)


def _audience(allow: Scope) -> ColumnElement[bool]:
    """access.allows_document as SQL (the same rules, in the same order)."""
    audience = allow.audience
    conditions = [~_private()] if audience.public_only else []
    if audience.restricted:
        conditions.append(_opens(allow))
    if audience.token is not None:
        # Fail closed: only a "#name" pattern of the private channel itself opens it.
        named = [rule[1:] for rule in audience.sources if rule.startswith("#")]
        private_ok = func.coalesce(_meta("channel"), "").in_(named) if named else false()
        public_ok = (
            or_(false(), *(_matches(r) for r in audience.sources)) if audience.sources else true()
        )
        return and_(
            true(), *conditions, or_(and_(_private(), private_ok), and_(~_private(), public_ok))
        )
    if audience.channel_id is None:
        return and_(true(), *conditions)
    here = func.coalesce(_meta("channel_id") == audience.channel_id, false())
    conditions.append(or_(~_private(), here))
    rules = audience.channel_sources
    if rules is None and allow.restrictions:
        rules = allow.restrictions.get(audience.channel_id, allow.restrictions.get("*"))
    if rules is not None:
        conditions.append(or_(false(), *(_matches(r) for r in rules)))
    return and_(*conditions)


def _matches(rule: str) -> ColumnElement[bool]:
    """access.matches as SQL: "#name", a glob against the uri, or a part of the uri."""
    if rule.startswith("#"):
        return and_(
            func.coalesce(_meta("kind"), "") == "slack",
            func.coalesce(_meta("channel"), "") == rule[1:],
        )
    if any(ch in rule for ch in "*?["):
        return _docs.c.uri.op("~")(glob_regex(rule))
    return func.strpos(_docs.c.uri, rule) > 0


def glob_regex(pattern: str) -> str:
    """An fnmatch glob as an anchored PostgreSQL regular expression."""
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            # fnmatch: "]" right after "[" or "[!" is literal; an unclosed "[" is literal.
            j = i
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 1
            if j >= len(pattern):
                out.append(r"\[")
                continue
            body = pattern[i:j].replace("\\", r"\\")
            i = j + 1
            if body.startswith("!"):
                body = "^" + body[1:]
            elif body.startswith("^"):
                body = "\\" + body
            out.append(f"[{body}]")
        elif ch.isalnum():
            out.append(ch)
        else:
            out.append("\\" + ch)
    out.append("$")
    return "".join(out)
