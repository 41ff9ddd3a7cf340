"""The composition root: builds the store, models, index, retriever and answerer once, lazily,
from one Settings object. The CLI and the Slack bot talk to this."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from kbqa.assistant.answerer import Answerer
from kbqa.assistant.generator import Generator, make_generator
from kbqa.errors import KbqaError, NotIndexedError
from kbqa.ingest.sources import Source, documents_source, open_source
from kbqa.retrieval.access import Audience, allows, matches
from kbqa.retrieval.embedder import Embedder, make_embedder
from kbqa.retrieval.index import VectorIndex
from kbqa.retrieval.indexer import (
    STAGES,
    Indexer,
    IngestReport,
    Progress,
    check_embedder,
    open_vector_index,
    rebuild_vector_index,
)
from kbqa.retrieval.retriever import Retriever
from kbqa.settings import Settings
from kbqa.store import SlackCursorRow, Store
from kbqa.types import Answer, Hit


class KnowledgeBase:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ):
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        if embedder is not None:
            self.embedder = embedder
        if generator is not None:
            self.generator = generator

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.db_url)

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return make_embedder(s.embedding_model, s.device, s.embed_batch_size)

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
        )

    @cached_property
    def index(self) -> VectorIndex:
        check_embedder(self.store, self.embedder)
        use_gpu = self.settings.device in ("auto", "cuda")
        return open_vector_index(self.store, self.settings.index_path, self.embedder.dim, use_gpu)

    @cached_property
    def retriever(self) -> Retriever:
        from kbqa.retrieval.rerank import make_reranker

        s = self.settings
        return Retriever(
            self.store,
            self.embedder,
            self.index,
            s.retrieval_mode,
            s.fusion,
            s.fusion_alpha,
            rrf_k=s.rrf_k,
            stemmer=s.bm25_stemmer,
            reranker=make_reranker(s.rerank_model, s.device),
            rerank_depth=s.rerank_depth,
        )

    def ingest(self, paths: list[Path], progress: Progress | None = None) -> IngestReport:
        """Ingest folders, files and Slack exports (zip or folder)."""
        s = self.settings
        sources = [
            open_source(
                path,
                s.slack_workspace,
                s.slack_include_bots,
                s.chunk_max_chars,
                s.chunk_soft_max_chars,
            )
            for path in paths
        ]
        return self.index_sources(sources, progress)

    def index_sources(
        self, sources: list[Source], progress: Progress | None = None
    ) -> IngestReport:
        indexer = Indexer(self.store, self.embedder, self.index, self.settings)
        return indexer.ingest(sources, progress)

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
        """Answer a question; `audience` limits the sources to those its channel may see, and
        `sources` (patterns, see retrieval/access.py) to those the asker names."""
        self.require_content()
        generator = None if extractive else self.generator
        allow = None
        if sources or (audience is not None and audience.channel_id is not None):
            restrictions = self.settings.slack_channel_sources

            def allow(hit: Hit) -> bool:
                if audience is not None and not allows(hit, audience, restrictions):
                    return False
                return not sources or any(matches(rule, hit) for rule in sources)

        answerer = Answerer(self.retriever, generator, self.settings)
        return answerer.answer(question, k, extractive, history, allow, context)

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
        index = rebuild_vector_index(self.store, self.settings.index_path, dim)
        self.__dict__["index"] = index
        return len(index)

    def status(self) -> dict:
        """Counts, models, index size and the last ingest run."""
        index_path = self.settings.index_path
        dim = int(self.store.get_meta("embedding_dim") or 1)
        info = {
            "home": str(self.settings.home),
            "database": self.settings.db_url,
            **self.store.counts(),
            "embedding_model": self.store.get_meta("embedding_model")
            or self.settings.embedding_model,
            "generator_model": self.settings.generator_model,
            "index_vectors": len(VectorIndex.load(index_path, dim)) if index_path.exists() else 0,
            "index_bytes": index_path.stat().st_size if index_path.exists() else 0,
            "last_run": None,
        }
        run = self.store.last_run()
        if run is not None:
            stats = run.stats or {}
            info["last_run"] = {
                "started_at": run.started_at.isoformat(timespec="seconds"),
                "status": run.status,
                "roots": run.roots,
                **{k: stats.get(k, 0) for k in ("added", "updated", "unchanged", "removed")},
                "failed": len(stats.get("failed", [])),
                "chunks": stats.get("chunks", 0),
                "seconds": round(stats.get("seconds", 0.0), 1),
            }
        return info


def _merge(total: IngestReport, report: IngestReport) -> None:
    for name in ("added", "updated", "unchanged", "removed", "chunks", "embedded", "seconds"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    total.failed += report.failed
    for stage, seconds in report.stages.items():
        total.stages[stage] = total.stages.get(stage, 0.0) + seconds
