"""The core: one object per process that owns the settings, the models (loaded once), the
store and the current search snapshot, and offers the verbs every interface uses (`ask`,
`ask_stream`, `ingest`, `status`, `feedback`, …). The CLI, the HTTP service and the Slack bot
are thin layers over it; none of them opens a database session or pokes a retriever.

Thread-safety by construction: the snapshot is immutable and swapped by one reference
assignment (retrieval/snapshot.py); each question pins the snapshot it started with; the models
are called through a lock (their tokenizers are not safe to share between threads); ingests in
this process are serialized and never touch the published snapshot."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from kbqa import faults
from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import Generator, make_generator
from kbqa.errors import KbqaError, NotIndexedError
from kbqa.ingest.files import FileLimits
from kbqa.ingest.pipeline import (
    STAGES,
    Indexer,
    IngestReport,
    Progress,
    Remote,
    RemoteRun,
    check_embedder,
)
from kbqa.ingest.sources import Source, documents_source, open_source
from kbqa.ingest.worker import ParseWorker
from kbqa.redact import mask_url
from kbqa.retrieval.access import Audience, Scope
from kbqa.retrieval.embedder import Embedder, make_embedder
from kbqa.retrieval.index import (
    IndexChoice,
    VectorIndex,
    open_vector_index,
    rebuild_vector_index,
)
from kbqa.retrieval.retriever import Retriever
from kbqa.retrieval.snapshot import Snapshot, Snapshots, build_snapshot, generation
from kbqa.settings import Settings
from kbqa.store import FeedbackRow, SlackCursorRow, Store
from kbqa.store import queries as store_queries
from kbqa.store import tokens as store_tokens
from kbqa.types import Answer

log = logging.getLogger(__name__)


class KnowledgeBase:
    """The core. Build one per process (per knowledge base) and share it between threads."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ):
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        faults.arm(settings.fault_at)
        if embedder is not None:
            self.embedder = _Serialized(embedder)
        if generator is not None:
            self.generator = generator
        self._write_lock = threading.Lock()
        self._wrap_lock = threading.Lock()

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.db_url, self.settings.database_busy_seconds)

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        # With backend "auto" the knowledge base keeps the backend it was embedded with.
        stored = self.store.get_meta("embedding_model")
        return _Serialized(
            make_embedder(
                s.embedding_model,
                s.device,
                s.embed_batch_size,
                s.embedding_backend,
                stored,
                s.model_cache,
            )
        )

    @cached_property
    def generator(self) -> Generator:
        s = self.settings
        return make_generator(
            s.generator_model,
            s.models_dir,
            s.device,
            s.model_cache,
            s.generator_backend,
            s.generator_threads,
            s.generator_precision,
        )

    def _locked_generator(self) -> Generator | None:
        """The generator, called through a lock (one wrapper per generator object)."""
        generator = self.generator
        if generator is None:
            return None
        with self._wrap_lock:
            wrapped = self.__dict__.get("_wrapped_generator")
            if wrapped is None or wrapped._model is not generator:
                wrapped = self.__dict__["_wrapped_generator"] = _Serialized(generator)
        return wrapped

    @cached_property
    def reranker(self):
        from kbqa.retrieval.rerank import make_reranker

        return make_reranker(self.settings.rerank_model, self.settings.device)

    # -- the search snapshot ----------------------------------------------------------------

    @property
    def lexical_dir(self) -> Path:
        return self.settings.home / "bm25"

    def _use_gpu(self) -> bool:
        return self.settings.device in ("auto", "cuda")

    def _index_choice(self) -> IndexChoice:
        return IndexChoice(self.settings.vector_index, self.settings.vector_index_flat_max)

    def _dim(self) -> int:
        return int(self.store.get_meta("embedding_dim") or 0) or self.embedder.dim

    def _pg_index(self, dim: int | None = None):
        """The pgvector backend's index (vector_backend "pgvector")."""
        from kbqa.retrieval.pgvector import PgVectorIndex

        return PgVectorIndex(self.store, dim or self._dim(), self.settings.pgvector_ef_search)

    def _build_snapshot(self, index: VectorIndex | None = None) -> Snapshot:
        s = self.settings
        lexical = None
        if s.vector_backend == "pgvector":
            # No FAISS copy: searches run in the shared database, so the snapshot only holds
            # the chunks' metadata (and BM25, unless full-text search is the lexical side).
            if index is None:
                index = self._pg_index()
                index.repair()
            if s.lexical_backend == "postgres-fts":
                from kbqa.retrieval.pgvector import PgFullText

                lexical = PgFullText(self.store)
        return build_snapshot(
            self.store,
            s.index_path,
            self.lexical_dir,
            self._dim(),
            s.bm25_stemmer,
            self._use_gpu(),
            index=index,
            choice=self._index_choice(),
            lexical=lexical,
        )

    @cached_property
    def snapshots(self) -> Snapshots:
        return Snapshots(
            self._build_snapshot,
            lambda current: generation(self.store) != current.generation,
            self.settings.snapshot_check_seconds,
        )

    @property
    def snapshot(self) -> Snapshot:
        """The current search snapshot (a newer one is built when the database changes)."""
        return self.snapshots.current()

    def refresh(self) -> Snapshot:
        """Build and publish a snapshot of the database now (say, after another process's
        ingest, without waiting for the periodic check)."""
        return self.snapshots.refresh()

    @property
    def index(self) -> VectorIndex:
        return self.snapshot.index

    @cached_property
    def retriever(self) -> Retriever:
        """The retriever over the current snapshot; `retriever.pinned()` holds one snapshot."""
        check_embedder(self.store, self.embedder)
        s = self.settings
        return Retriever(
            lambda: self.snapshot,
            self.embedder,
            s.retrieval_mode,
            s.fusion,
            s.fusion_alpha,
            rrf_k=s.rrf_k,
            reranker=self.reranker,
            rerank_depth=s.rerank_depth,
        )

    # -- the write path ---------------------------------------------------------------------

    def ingest(
        self, paths: list[Path], progress: Progress | None = None, spark: str = ""
    ) -> IngestReport:
        """Ingest folders, files and Slack exports (zip or folder); with `spark` (a Spark
        master URL) the parse, chunk and embed stages run as a Spark job."""
        s = self.settings
        limits = self.file_limits()
        # Files are parsed in a worker process, each within the limits (ingest/worker.py);
        # with Spark the executors parse.
        with ParseWorker(limits, s.chunk_max_chars, s.chunk_soft_max_chars) as worker:
            sources = [
                open_source(
                    path,
                    s.slack_workspace,
                    s.slack_include_bots,
                    s.chunk_max_chars,
                    s.chunk_soft_max_chars,
                    limits,
                    worker.parse,
                )
                for path in paths
            ]
            if spark:
                return self._spark_ingest(spark, sources, progress)
            return self.index_sources(sources, progress)

    def file_limits(self) -> FileLimits:
        """What one file may cost at ingest, from the settings."""
        s = self.settings
        return FileLimits(
            s.max_file_bytes, s.max_unpacked_bytes, s.max_file_seconds, s.max_parse_memory_bytes
        )

    def _spark_ingest(
        self, master: str, sources: list[Source], progress: Progress | None
    ) -> IngestReport:
        from functools import partial

        from kbqa.ingest.spark import WriteTarget, run_spark

        s = self.settings
        check_embedder(self.store, self.embedder)
        # The executors build their own embedder from the settings (one per Python worker).
        # The same backend as the driver's (its name carries it), so the vectors agree.
        factory = partial(
            make_embedder,
            s.embedding_model,
            s.device,
            s.embed_batch_size,
            s.embedding_backend,
            self.embedder.name,
            s.model_cache,
        )
        run = partial(
            run_spark,
            master,
            sources,
            self.store,
            self.embedder,
            factory,
            s.chunk_max_chars,
            s.chunk_soft_max_chars,
            limits=self.file_limits(),
        )
        stages: dict[str, float] = {}
        writes = s.spark_writes
        if writes == "auto":
            writes = "driver" if self.store.engine.dialect.name == "sqlite" else "executors"
        if writes == "driver":
            # SQLite has one writer at a time: the executors hand their results to this one.
            result = run()
            stages = result.stages
            report = self.index_sources(result.sources, progress, embedder=result.embedder)
        else:
            # A server database: the executors write, inside this process's recorded run.
            index_factory = None
            if s.vector_backend == "pgvector":
                from kbqa.retrieval.pgvector import PgVectorIndex

                index_factory = partial(
                    PgVectorIndex, dim=self.embedder.dim, ef_search=s.pgvector_ef_search
                )
            target = WriteTarget(
                s.db_url,
                s.database_busy_seconds,
                self.embedder.name,
                self.embedder.dim,
                index_factory,
            )

            def remote(source_ids: list[int]) -> Remote:
                result = run(source_ids=source_ids, target=target)
                stages.update(result.stages)
                return Remote(result.sources, result.written, result.embedded)

            report = self.index_sources(sources, progress, remote=remote)
        # Where the time went: on the executors (summed over tasks), and the job's wall time.
        for stage in ("hash", "parse", "chunk", "embed", "store", "spark"):
            report.stages[stage] = report.stages.get(stage, 0.0) + stages.get(stage, 0.0)
        return report

    def index_sources(
        self,
        sources: list[Source],
        progress: Progress | None = None,
        embedder: Embedder | None = None,
        remote: RemoteRun | None = None,
    ) -> IngestReport:
        """Index documents from sources, then publish a snapshot that has them; `remote` runs
        stages elsewhere (a Spark job whose executors write, see Indexer.ingest)."""
        s = self.settings
        embedder = embedder or self.embedder
        with self._write_lock:
            check_embedder(self.store, self.embedder)
            # The write path fills an index of its own; the published one is never changed.
            if s.vector_backend == "pgvector":
                index = self._pg_index(self.embedder.dim)
                index.repair()
            else:
                index = open_vector_index(
                    self.store,
                    s.index_path,
                    self.embedder.dim,
                    self._use_gpu(),
                    self._index_choice(),
                )
            report = Indexer(self.store, embedder, index, s).ingest(sources, progress, remote)
            self.snapshots.publish(self._build_snapshot(index))
        return report

    # -- the read path ----------------------------------------------------------------------

    def _answerer(
        self, extractive: bool, audience: Audience | None, sources: list[str] | tuple[str, ...]
    ) -> tuple[Answerer, Scope | None]:
        self.require_content()
        generator = None if extractive else self._locked_generator()
        scope = self.scope(audience, sources)
        # Pinned: retrieval, the support check and the confidence all read one snapshot.
        return Answerer(self.retriever.pinned(), generator, self.settings), scope

    def scope(
        self, audience: Audience | None, sources: list[str] | tuple[str, ...] = ()
    ) -> Scope | None:
        """What a question from `audience`, limited to `sources`, may draw on (None: all)."""
        scope = Scope(audience, tuple(sources), self.settings.slack_channel_sources)
        return None if scope.everything else scope

    def ask(
        self,
        question: str,
        k: int | None = None,
        extractive: bool = False,
        audience: Audience | None = None,
        history: list[tuple[str, str]] = (),
        context: str = "",
        sources: list[str] = (),
    ) -> Answer:
        """Answer a question; `audience` limits the sources to those it may see, and
        `sources` (patterns, see retrieval/access.py) to those the asker names."""
        answerer, allow = self._answerer(extractive, audience, sources)
        return answerer.answer(question, k, extractive, history, allow, context)

    def ask_stream(
        self,
        question: str,
        k: int | None = None,
        extractive: bool = False,
        audience: Audience | None = None,
        history: list[tuple[str, str]] = (),
        context: str = "",
        sources: list[str] = (),
    ) -> Iterator[str | Answer]:
        """ask(), streamed: each checked sentence (with its [n] markers) as it passes, then
        the Answer as the last item."""
        answerer, allow = self._answerer(extractive, audience, sources)
        return answerer.answer_stream(question, k, extractive, history, allow, context)

    def feedback(
        self,
        value: int,
        question: str,
        answer: str,
        citations: list[dict[str, Any]] = (),
        user: str = "",
        channel: str = "",
        message_ts: str = "",
        private: bool | None = None,
    ) -> int:
        """Store a 👍 (+1) or 👎 (-1) on an answer; returns its id. `private`: it was given
        where only some may read (a private channel, a DM; None if not known)."""
        if value not in (1, -1):
            raise KbqaError("feedback must be +1 or -1")
        with self.store.session() as s:
            row = FeedbackRow(
                value=value,
                question=question,
                answer=answer,
                citations=list(citations),
                user=user[:64],
                channel=channel[:64],
                message_ts=message_ts[:32],
                private=private,
            )
            s.add(row)
            s.commit()
            return row.id

    def claim(self, key: str) -> bool:
        """Record `key` once (a Slack message answered); False when any process already did."""
        return self.store.claim(key)

    # -- tokens -----------------------------------------------------------------------------

    def create_token(
        self, name: str, sources: list[str] = (), admin: bool = False
    ) -> tuple[str, store_tokens.TokenInfo]:
        """(secret, token): a new API token; the secret is shown once and stored hashed."""
        return store_tokens.create(self.store, name, list(sources), admin)

    def tokens(self) -> list[store_tokens.TokenInfo]:
        return store_tokens.listed(self.store)

    def revoke_token(self, name: str) -> None:
        store_tokens.revoke(self.store, name)

    def token(self, secret: str) -> store_tokens.TokenInfo | None:
        """The live token with this secret, or None."""
        return store_tokens.find(self.store, secret)

    # -- what is indexed ----------------------------------------------------------------------

    def documents(
        self,
        offset: int = 0,
        limit: int = 50,
        query: str = "",
        kind: str = "",
        audience: Audience | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many match, one page of them): documents whose uri or title contains `query`,
        of `kind` (file or slack), that `audience` may see."""
        visible = self.scope(audience)
        return store_queries.documents(self.store, offset, limit, query, kind, visible)

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The latest ingest runs, newest first, with the files that failed and why."""
        return store_queries.runs(self.store, limit)

    def sources(self) -> list[dict[str, Any]]:
        """Every ingested root with its kind and number of documents."""
        return store_queries.sources(self.store)

    def sync_slack(
        self, channels: list[str], client=None, progress: Progress | None = None
    ) -> tuple[IngestReport, dict[str, int]]:
        """Index new threads of the named channels from the Slack API, from where the last
        sync of each channel stopped. Returns the report and the messages read per channel."""
        from kbqa.ingest.slack import Conversation, build_documents
        from kbqa.ingest.slack_api import SlackFetcher, make_client

        s = self.settings
        if not s.slack_workspace:
            raise KbqaError("set slack_workspace (YOUR-TEAM in https://YOUR-TEAM.slack.com)")
        if client is None:
            if not s.slack_bot_token:
                raise KbqaError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
            client = make_client(s.slack_bot_token)
        fetcher = SlackFetcher(client)
        found = fetcher.channels(channels)
        names = {cid: name for cid, name, _ in found}
        total, read = IngestReport(stages=dict.fromkeys(STAGES, 0.0)), {}
        for cid, name, private in found:
            with self.store.session() as session:
                cursor = session.get(SlackCursorRow, cid)
                oldest = cursor.last_ts if cursor else None
            fetched = fetcher.fetch(cid, name, private, oldest)
            read[name] = len(fetched.messages)
            mentioned = {m.get("user", "") for m in fetched.messages} | {
                uid
                for m in fetched.messages
                for uid in re.findall(r"<@([A-Z0-9]+)", m.get("text", ""))
            }
            users = fetcher.user_names({u for u in mentioned if u})
            documents, warnings = build_documents(
                Conversation(cid, name, private),
                fetched.messages,
                users,
                names,
                s.slack_workspace,
                s.slack_include_bots,
                max_chars=s.chunk_max_chars,
            )
            source = documents_source(f"slack-api:{cid}", "slack-api", documents, complete=False)
            source.problems = [(f"#{name}", w) for w in warnings]
            report = self.index_sources([source], progress)
            _merge(total, report)
            # Only after the threads are stored: a crash before this re-reads them next time.
            with self.store.session() as session:
                session.merge(SlackCursorRow(channel_id=cid, name=name, last_ts=fetched.latest_ts))
                session.commit()
        return total, read

    def require_content(self) -> None:
        if self.store.counts()["chunks"] == 0:
            raise NotIndexedError("the knowledge base is empty: run `kbqa ingest PATH` first")

    def reindex(self) -> int:
        """Rebuild the vector index from stored embeddings; returns its size."""
        dim = int(self.store.get_meta("embedding_dim") or 0)
        if not dim:
            raise NotIndexedError("nothing to reindex: run `kbqa ingest PATH` first")
        with self._write_lock:
            if self.settings.vector_backend == "pgvector":
                index = self._pg_index(dim)
                index.refill()
            else:
                index = rebuild_vector_index(
                    self.store, self.settings.index_path, dim, self._index_choice()
                )
            self.snapshots.publish(self._build_snapshot(index))
        return len(index)

    def status(self) -> dict:
        """Counts, models, index size and the last ingest run."""
        index_path = self.settings.index_path
        dim = int(self.store.get_meta("embedding_dim") or 1)
        info = {
            "home": str(self.settings.home),
            "database": mask_url(self.settings.db_url),
            **self.store.counts(),
            "embedding_model": self.store.get_meta("embedding_model")
            or self.settings.embedding_model,
            "generator_model": self.settings.generator_model,
            **self._index_info(index_path, dim),
            "index_bytes": index_path.stat().st_size if index_path.exists() else 0,
            "last_run": None,
        }
        current = self.snapshots.peek()
        if current is not None:
            info["snapshot"] = {
                "chunks": len(current),
                "built_at": round(current.built_at, 3),
                "builds": self.snapshots.builds,
            }
        run = self.store.last_run()
        if run is not None:
            stats = run.stats or {}
            info["last_run"] = {
                "started_at": run.started_at.isoformat(timespec="seconds"),
                "status": run.status,
                "error": run.error or "",
                "roots": run.roots,
                **{k: stats.get(k, 0) for k in ("added", "updated", "unchanged", "removed")},
                "failed": len(stats.get("failed", [])),
                "chunks": stats.get("chunks", 0),
                "seconds": round(stats.get("seconds", 0.0), 1),
            }
        return info

    def _index_info(self, path: Path, dim: int) -> dict:
        current = self.snapshots.peek()
        if current is not None:
            index = current.index
        elif self.settings.vector_backend == "pgvector":
            if not self.store.get_meta("embedding_dim"):
                return {"index_vectors": 0, "index": {"kind": "pgvector"}}
            index = self._pg_index(dim)
        else:
            index = VectorIndex.load(path, dim)
        if not hasattr(index, "describe"):  # pgvector: the vectors live in the database
            return {"index_vectors": len(index), "index": {"kind": "pgvector"}}
        described = index.describe()
        return {"index_vectors": described.pop("vectors"), "index": described}


class _Serialized:
    """A model whose calls run one at a time. Hugging Face's fast tokenizers fail ("Already
    borrowed") when one is used by two threads at once, and on a CPU concurrent calls only
    compete for the same cores. Other attributes pass through."""

    def __init__(self, model: Any):
        self._model = model
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._model, name)
        if not callable(value) or name.startswith("_"):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = value(*args, **kwargs)
            if isinstance(result, Iterator) and not isinstance(result, (str, bytes)):
                return self._locked_iteration(result)
            return result

        return call

    def _locked_iteration(self, iterator: Iterator) -> Iterator:
        # A streaming method runs the model while it is iterated: hold the lock meanwhile.
        with self._lock:
            yield from iterator

    def embed(self, texts: list[str]):
        with self._lock:
            return self._model.embed(texts)

    def generate(self, *args: Any, **kwargs: Any):
        with self._lock:
            return self._model.generate(*args, **kwargs)


def _merge(total: IngestReport, report: IngestReport) -> None:
    for name in ("added", "updated", "unchanged", "removed", "chunks", "embedded", "seconds"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    total.failed += report.failed
    for stage, seconds in report.stages.items():
        total.stages[stage] = total.stages.get(stage, 0.0) + seconds
