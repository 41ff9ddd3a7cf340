"""What `kbqa ingest PATH…` runs in the calling process: open the paths as sources (files are
parsed in a worker process, within the settings' limits) and hand them to the core's write
path; with `--spark MASTER` this process is the driver of a Spark job (ingest/spark.py) that
parses, chunks and embeds on the executors."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from kbqa.ingest.files import FileLimits
from kbqa.ingest.pipeline import IngestReport, Progress, Remote, RemoteRun, check_embedder
from kbqa.ingest.prefetch import Prefetch
from kbqa.ingest.sources import Source, open_source
from kbqa.ingest.worker import ParsePool
from kbqa.settings import Settings

if TYPE_CHECKING:
    from kbqa.services import Services

# The core's write path: index these sources (with this embedder, or stages run remotely).
IndexSources = Callable[..., IngestReport]


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def file_limits(settings: Settings) -> FileLimits:
    """What one file may cost at ingest, from the settings."""
    s = settings
    return FileLimits(
        s.max_file_bytes, s.max_unpacked_bytes, s.max_file_seconds, s.max_parse_memory_bytes
    )


def ingest_paths(
    paths: list[Path],
    progress: Progress | None,
    spark: str,
    services: Services,
    index_sources: IndexSources,
) -> IngestReport:
    """Ingest folders, files and Slack exports with `index_sources`; with `spark` (a master
    URL) the parse, chunk and embed stages run as a Spark job."""
    started = time.perf_counter()
    s = services.settings
    limits = file_limits(s)
    # Files are parsed in worker processes, one per core (ingest_workers), each file within the
    # limits (ingest/worker.py), ahead of the write path (ingest/prefetch.py); with Spark the
    # executors parse.
    workers = 1 if spark else (s.ingest_workers or cores())
    pool = ParsePool(limits, s.chunk_max_chars, s.chunk_soft_max_chars, workers)
    own = services.models.embedder
    with pool, Prefetch(pool, services.store, None if spark else own) as prefetch:
        sources = [
            open_source(
                path,
                s.slack_workspace,
                s.slack_include_bots,
                s.chunk_max_chars,
                s.chunk_soft_max_chars,
                limits,
                pool.parse,
            )
            for path in paths
        ]
        if spark:
            index = partial(index_sources, started=started)
            report = spark_ingest(spark, sources, progress, services, limits, index)
        else:
            embedder = prefetch.embedder(own)
            report = index_sources(prefetch.sources(sources), progress, embedder, started=started)
    # report.seconds, set as the run is recorded, counts from `started`: what the user waited
    # for (the run, and before it the listing, the parsers' loading and the workers' start),
    # the same figure in the run's record (`kbqa status`, the admin page) as in `kbqa ingest`.
    return report


def spark_ingest(
    master: str,
    sources: list[Source],
    progress: Progress | None,
    services: Services,
    limits: FileLimits,
    index_sources: IndexSources,
) -> IngestReport:
    """Ingest `sources` with the parse, chunk and embed stages on the Spark cluster at
    `master`, then hand the results to `index_sources`, which records the run."""
    from kbqa.ingest.spark import WriteTarget, run_spark

    s, store, embedder = services.settings, services.store, services.models.embedder
    check_embedder(store, embedder)
    # The executors build their own embedder from the settings (one per Python worker).
    # The same backend as the driver's (its name carries it), so the vectors agree.
    factory = services.models.embedder_factory(embedder.name)
    run = partial(
        run_spark,
        master,
        sources,
        store,
        embedder,
        factory,
        s.chunk_max_chars,
        s.chunk_soft_max_chars,
        limits=limits,
    )
    stages: dict[str, float] = {}
    writes = s.spark_writes
    if writes == "auto":
        writes = "driver" if store.engine.dialect.name == "sqlite" else "executors"
    if writes == "driver":
        # SQLite has one writer at a time: the executors hand their results to this one.
        result = run()
        stages = result.stages
        report = index_sources(result.sources, progress, embedder=result.embedder)
    else:
        # A server database: the executors write, inside this process's recorded run.
        target = WriteTarget(
            s.db_url,
            s.database_busy_seconds,
            embedder.name,
            embedder.dim,
            services.backend.executor_index(embedder.dim),
        )

        def remote(source_ids: list[int]) -> Remote:
            result = run(source_ids=source_ids, target=target)
            stages.update(result.stages)
            return Remote(result.sources, result.written, result.embedded)

        remote_run: RemoteRun = remote
        report = index_sources(sources, progress, remote=remote_run)
    # Where the time went: on the executors (summed over tasks), and the job's wall time.
    for stage in ("hash", "parse", "chunk", "embed", "store", "spark"):
        report.stages[stage] = report.stages.get(stage, 0.0) + stages.get(stage, 0.0)
    return report
