"""The core: one object per process that owns the settings and what is built from them (the
store, the models, the vector backend, the search snapshot: services.py), and offers the verbs
every interface uses: `ask`, `ask_stream`, `ingest` (ingest/driver.py, Spark too), `sync`
(ingest/sync.py, connect.py), `status`, `feedback`, and the admin page's tokens and listings.

Thread-safety: the snapshot is immutable, swapped by one reference, pinned by each question;
the models are called through a lock, the generator through its queue; ingests are serialized."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kbqa import faults
from kbqa.assistant import followup
from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import Generator
from kbqa.errors import KbqaError, NotIndexedError
from kbqa.ingest.connect import sync_verb
from kbqa.ingest.driver import ingest_paths
from kbqa.ingest.pipeline import Indexer, IngestReport, Progress, RemoteRun, check_embedder
from kbqa.ingest.sources import Source
from kbqa.ingest.sync import sync_slack
from kbqa.retrieval.access import Audience, Scope
from kbqa.retrieval.embedder import Embedder
from kbqa.retrieval.snapshot import Snapshot
from kbqa.services import Services
from kbqa.settings import Settings
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
        settings.home.mkdir(parents=True, exist_ok=True)
        faults.arm(settings.fault_at)
        self._services = Services(settings, embedder, generator)
        self._write_lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self._services.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        # New (frozen) settings rebuild what a changed setting was read for (services.py).
        self._services = self._services.renewed(settings)

    # What the verbs are built on (tests and benchmarks read them; interfaces do not).
    store = property(lambda self: self._services.store)
    embedder = property(lambda self: self._services.models.embedder)
    generator = property(lambda self: self._services.models.generator)
    reranker = property(lambda self: self._services.models.reranker)
    retriever = property(lambda self: self._services.retriever)
    snapshots = property(lambda self: self._services.snapshots)
    lexical_dir = property(lambda self: self._services.backend.lexical_dir)
    index = property(lambda self: self.snapshot.index)
    queue = property(lambda self: self._services.models.queue)  # assistant/queue.py: tickets

    @property
    def snapshot(self) -> Snapshot:
        """The current search snapshot (a newer one is built when the database changes)."""
        return self._services.snapshots.current()

    def refresh(self) -> Snapshot:
        """Build and publish a snapshot now (after another process's ingest, say)."""
        return self._services.snapshots.refresh()

    def follow_ingests(self) -> Callable[[], None]:
        """Check for other processes' ingests every `snapshot_check_seconds` in a daemon thread,
        so that a server that sits idle while one runs has the next snapshot built before the
        next question comes (a question alone finds the change and is answered from the old
        snapshot while the next one is built). Returns a function that stops it."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(max(self.settings.snapshot_check_seconds, 0.1)):
                snapshots = self._services.snapshots  # new settings, new services
                if snapshots.peek() is None:
                    continue  # nothing searched yet: the first question builds it
                try:
                    snapshots.current()  # checks, and starts the next build if changed
                except Exception:
                    log.warning("could not follow the database's changes", exc_info=True)

        threading.Thread(target=loop, name="kbqa-follow-ingests", daemon=True).start()
        return stop.set

    # -- the write path ---------------------------------------------------------------------

    def ingest(
        self, paths: list[Path], progress: Progress | None = None, spark: str = ""
    ) -> IngestReport:
        """Ingest folders, files, Slack exports; `spark` (a master URL) parses and embeds there."""
        return ingest_paths(paths, progress, spark, self._services, self.index_sources)

    def index_sources(
        self,
        sources: list[Source],
        progress: Progress | None = None,
        embedder: Embedder | None = None,
        remote: RemoteRun | None = None,
        started: float | None = None,
    ) -> IngestReport:
        """Index documents from sources, then publish a snapshot that has them; `remote` runs
        stages elsewhere (a Spark job whose executors write, see Indexer.ingest); `started`
        is when the caller began (the run's recorded seconds count from it)."""
        services = self._services
        own = services.models.embedder
        with self._write_lock:
            check_embedder(services.store, own)
            # The write path fills an index of its own; the published one is never changed.
            index = services.backend.writable(own.dim)
            report = Indexer(services.store, embedder or own, index, services.settings).ingest(
                sources, progress, remote, started
            )
            services.publish(index)
        return report

    def sync(
        self, channels: list[str], client=None, progress: Progress | None = None
    ) -> tuple[IngestReport, dict[str, int]]:
        """New threads of Slack channels since each one's last sync: (report, messages read)."""
        return sync_slack(channels, self.settings, self.store, self.index_sources, client, progress)

    sync_slack = sync
    sync_sources = sync_verb  # `[[sources]]` entries through their connectors (connect.py)

    def reindex(self) -> int:
        """Rebuild the vector index from stored embeddings; returns its size."""
        dim = int(self.store.get_meta("embedding_dim") or 0)
        if not dim:
            raise NotIndexedError("nothing to reindex: run `kbqa ingest PATH` first")
        with self._write_lock:
            services = self._services
            index = services.backend.rebuilt(dim)
            services.publish(index)
        return len(index)

    # -- the read path ----------------------------------------------------------------------

    def _answerer(
        self, extractive: bool, audience: Audience | None, sources: list[str] | tuple[str, ...]
    ) -> tuple[Answerer, Scope | None]:
        self.require_content()
        services, scope = self._services, self.scope(audience, sources)
        generator = None if extractive else services.models.locked(services.models.generator)
        # Pinned: retrieval, the support check and the confidence all read one snapshot.
        answerer = Answerer(services.retriever.pinned(), generator, services.settings)
        return services.answers.wrap(answerer, audience), scope

    def scope(
        self, audience: Audience | None, sources: list[str] | tuple[str, ...] = ()
    ) -> Scope | None:
        """What a question from `audience`, limited to `sources`, may draw on (None: all)."""
        s = self.settings
        scope = Scope(audience, tuple(sources), s.slack_channel_sources, s.slack_channel_principals)
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
        """Answer a question (a follow-up of `history` made standalone: assistant/followup.py);
        `audience` limits the sources to those it may see, `sources` (patterns) to those named."""
        answerer, allow = self._answerer(extractive, audience, sources)
        search = self._standalone(question, history, answerer, allow)
        answer = answerer.answer(search, k, extractive, history, allow, context)
        limited = self.scope(audience) is not None
        return followup.told(answer, question, sources, self.embedder.name, limited)

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
        """ask(), streamed: each checked sentence or unit as it passes, then the Answer."""
        answerer, allow = self._answerer(extractive, audience, sources)
        search = self._standalone(question, history, answerer, allow)
        items = answerer.answer_stream(search, k, extractive, history, allow, context)
        limited = self.scope(audience) is not None
        return followup.told_stream(items, question, sources, self.embedder.name, limited)

    def searched_for(
        self,
        question: str,
        history: list[tuple[str, str]] = (),
        extractive: bool = False,
        audience: Audience | None = None,
        sources: list[str] = (),
    ) -> str:
        """What ask() would search for: `question`, or a follow-up of `history` made
        standalone (assistant/followup.py); nothing is answered."""
        answerer, allow = self._answerer(extractive, audience, sources)
        return self._standalone(question, history, answerer, allow)

    def _standalone(self, question: str, history, answerer, allow) -> str:
        """The question to search for (assistant/followup.py), its passages' nearness read
        from what `allow` lets the asker see."""
        if not history:
            return question

        def closest(query: str) -> float:
            hits = answerer.retriever.search(query, answerer.settings.top_k, allow)
            return hits[0].score if hits else 0.0

        rewrites = answerer.settings.followup_rewrite == "generator"
        generator = answerer.generator if rewrites else None
        return followup.standalone(question, history, generator, self.embedder, closest)

    def require_content(self) -> None:
        """Raise NotIndexedError when nothing is ingested; a SQLite file not made yet is
        empty, and is not made to say so (a mistyped home is not left with a database)."""
        if not self.settings.database_made or self.store.counts()["chunks"] == 0:
            raise NotIndexedError(
                "the knowledge base is empty: run `kbqa ingest PATH` first", self.settings.home
            )

    def warm_up(self) -> bool:
        """Build the search snapshot and load the embedder now (False: empty, none loaded)."""
        if not self.store.counts()["chunks"]:
            return False
        self.snapshot.index  # noqa: B018 - the snapshot is built on first use
        self.embedder.embed(["warm up"])
        return True

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
        """Store a 👍 (+1) or 👎 (-1) on an answer; its id. `private`: given where few read."""
        if value not in (1, -1):
            raise KbqaError("feedback must be +1 or -1")
        return self.store.add_feedback(
            value, question, answer, citations, user, channel, message_ts, private
        )

    def claim(self, key: str) -> bool:
        """Record `key` once (a Slack message answered); False when any process already did."""
        return self.store.claim(key)

    def create_token(
        self, name: str, sources: list[str] = (), admin: bool = False, principals: list[str] = ()
    ) -> tuple[str, store_tokens.TokenInfo]:
        """(secret, token): a new API token; the secret is shown once and stored hashed."""
        return store_tokens.create(self.store, name, list(sources), admin, list(principals))

    tokens = lambda self: store_tokens.listed(self.store)  # noqa: E731
    revoke_token = lambda self, name: store_tokens.revoke(self.store, name)  # noqa: E731

    def token(self, secret: str) -> store_tokens.TokenInfo | None:
        """The live token with this secret, or None."""
        return store_tokens.find(self.store, secret)

    def documents(
        self,
        offset: int = 0,
        limit: int = 50,
        query: str = "",
        kind: str = "",
        audience: Audience | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many match, a page of them): by uri or title, `kind` and what `audience` sees."""
        visible = self.scope(audience)
        return store_queries.documents(self.store, offset, limit, query, kind, visible)

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The latest ingest runs, newest first, with the files that failed and why."""
        return store_queries.runs(self.store, limit)

    def sources(self) -> list[dict[str, Any]]:
        """Every ingested root with its kind and number of documents."""
        return store_queries.sources(self.store)

    def status(self) -> dict:
        """Counts, models, index size and the last ingest run."""
        return self._services.status()
