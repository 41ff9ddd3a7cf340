"""`kbqa sync [NAME…]`: each `[[sources]]` entry synced through its connector, from the cursor
its last sync stored. The cursor moves only once the items it covers are stored, so a sync
killed at any point is re-done, not skipped, by the next one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from kbqa import faults
from kbqa.errors import KbqaError
from kbqa.ingest.connectors import SourceConfig, build_connector
from kbqa.ingest.connectors.base import Connector, connector_source
from kbqa.ingest.pipeline import IngestReport, Progress
from kbqa.ingest.sources import Parser, Source
from kbqa.settings import Settings
from kbqa.store import ConnectorCursorRow, Store
from kbqa.store.db import owner_alive, process_identity
from kbqa.store.tables import utcnow

log = logging.getLogger(__name__)

# A claim this old is another machine's crashed sync (it cannot be checked from here).
STALE = timedelta(hours=6)

IndexSources = Callable[[list[Source], Progress | None], IngestReport]


@dataclass
class SyncResult:
    """How one source's sync went: its ingest report, or the error that stopped it."""

    name: str
    kind: str
    report: IngestReport | None = None
    complete: bool = True
    listed: int = 0
    error: str = ""
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        return "ok" if self.complete and not self.failed else "partial"


def configured(settings: Settings, names: list[str] | tuple[str, ...] = ()) -> list[SourceConfig]:
    """The `[[sources]]` entries named (all of them when none is), in kbqa.toml's order."""
    sources = list(settings.sources)
    if not sources:
        raise KbqaError("no [[sources]] in kbqa.toml: add one (README: Connect your sources)")
    known = {c.name: c for c in sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KbqaError(
            f"no source named {', '.join(unknown)} in kbqa.toml (there are: {', '.join(known)})"
        )
    return [known[n] for n in dict.fromkeys(names)] if names else sources


def sync_sources(
    names: list[str] | tuple[str, ...],
    settings: Settings,
    store: Store,
    index_sources: IndexSources,
    progress: Progress | None = None,
    connectors: Mapping[str, Connector] | None = None,
    parser: Parser | None = None,
) -> list[SyncResult]:
    """Sync the named sources (all when none is named) one after another; a source that fails
    is reported with its reason and the others go on. `connectors` replaces built ones by
    name (tests, benchmarks)."""
    results = []
    for config in configured(settings, names):
        connector = (connectors or {}).get(config.name)
        results.append(
            sync_one(config, settings, store, index_sources, progress, connector, parser)
        )
    return results


def sync_one(
    config: SourceConfig,
    settings: Settings,
    store: Store,
    index_sources: IndexSources,
    progress: Progress | None = None,
    connector: Connector | None = None,
    parser: Parser | None = None,
) -> SyncResult:
    """One source: list from its cursor, index what changed, prune what is gone, then move the
    cursor. Its outcome is recorded for the admin page."""
    started = time.perf_counter()
    result = SyncResult(config.name, config.kind)
    try:
        cursor = _begin(store, config)
    except KbqaError as exc:
        result.error = str(exc)
        return result
    built: Connector | None = None
    try:
        if connector is None:
            connector = built = build_connector(config, settings.home)
        source = connector_source(
            connector, cursor, parser, settings.chunk_max_chars, settings.chunk_soft_max_chars
        )
        result.listed, result.complete = len(source.items), source.complete
        report = index_sources([source], progress)
        result.report, result.failed = report, list(report.failed)
        faults.point("sync-cursor")
        # Only now: a kill before this line lists the same items again next time.
        _finish(store, config, result, source.cursor)
    except KbqaError as exc:
        result.error = str(exc)
        _finish(store, config, result, None)
    except Exception as exc:  # a connector's bug must not stop the other sources
        log.warning("sync of %s failed", config.name, exc_info=True)
        result.error = f"unexpected error: {type(exc).__name__}: {exc}"[:500]
        _finish(store, config, result, None)
    except BaseException:  # Ctrl-C (or a test's kill): the source is free again, cursor kept
        _release(store, config)
        raise
    finally:
        _close(built)
    result.seconds = time.perf_counter() - started
    if not result.complete and not result.error:
        log.info("%s: the listing was not complete; nothing was pruned", config.name)
    return result


def _close(connector: Connector | None) -> None:
    """Close what a connector built here holds (HTTP clients, a mirror's pack files); one
    given by the caller is the caller's to close."""
    close = getattr(connector, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # the sync's outcome stands; only its resources leak
        log.warning(
            "closing the %s connector failed", getattr(connector, "name", "?"), exc_info=True
        )


def _begin(store: Store, config: SourceConfig) -> str | None:
    """Claim the source for this process and return its cursor; a KbqaError when another
    live process is syncing it (a claim older than STALE is taken over)."""
    me = process_identity()
    with store.session() as s:
        row = s.get(ConnectorCursorRow, config.name)
        if row is None:
            row = ConnectorCursorRow(name=config.name, kind=config.kind)
            s.add(row)
        elif row.owner and row.owner.get("pid") != me["pid"] and owner_alive(row.owner):
            since = row.last_started_at
            since = since if since is None or since.tzinfo else since.replace(tzinfo=UTC)
            if since is not None and utcnow() - since < STALE:
                raise KbqaError(
                    f"{config.name} is being synced by another process (pid "
                    f"{row.owner.get('pid')} on {row.owner.get('host')}): try again when it ends"
                )
        row.owner = me
        if row.kind != config.kind:  # the entry now points at another service: start over
            row.kind, row.cursor = config.kind, None
        row.last_started_at = utcnow()
        s.commit()
        return row.cursor


def _finish(store: Store, config: SourceConfig, result: SyncResult, cursor: str | None) -> None:
    report = result.report
    stats: dict[str, Any] = {
        "listed": result.listed,
        "complete": result.complete,
        "failed": [list(f) for f in result.failed[:50]],
        "failures": len(result.failed),
    }
    if report is not None:
        for key in ("added", "updated", "unchanged", "removed", "chunks"):
            stats[key] = getattr(report, key)
    with store.session() as s:
        row = s.get(ConnectorCursorRow, config.name)
        if cursor is not None:
            row.cursor = cursor
        row.last_finished_at = utcnow()
        row.owner = None
        row.last_status = result.status
        row.error = result.error or None
        row.stats = stats
        s.commit()


def _release(store: Store, config: SourceConfig) -> None:
    try:
        with store.session() as s:
            row = s.get(ConnectorCursorRow, config.name)
            if row is not None:
                row.owner = None
                s.commit()
    except Exception:  # the claim is released anyway when this process is gone
        log.debug("could not release the claim on %s", config.name, exc_info=True)


def source_states(store: Store, settings: Settings) -> list[dict[str, Any]]:
    """Each configured source with its last sync (for the admin page and `kbqa sync --list`)."""
    with store.session() as s:
        rows = {r.name: r for r in s.query(ConnectorCursorRow).all()}
        states = []
        for config in settings.sources:
            row = rows.get(config.name)
            states.append(
                {
                    "name": config.name,
                    "kind": config.kind,
                    "schedule_minutes": config.schedule_minutes,
                    "last_started_at": row.last_started_at if row else None,
                    "last_finished_at": row.last_finished_at if row else None,
                    "status": (row.last_status if row else None) or "never",
                    "error": row.error if row else None,
                    "stats": dict(row.stats or {}) if row else {},
                }
            )
    return states


def summary(result: SyncResult) -> str:
    """One line per source, like the ingest's."""
    if result.error:
        return f"{result.name}: failed: {result.error}"
    r = result.report
    assert r is not None
    failed = f"failed {len(r.failed)}"
    if r.failed:
        shown = ", ".join(f"{name}: {why}" for name, why in r.failed[:2])
        failed += f" ({shown}{', …' if len(r.failed) > 2 else ''})"
    line = (
        f"{result.name}: listed {result.listed} · added {r.added} · updated {r.updated} · "
        f"unchanged {r.unchanged} · removed {r.removed} · {failed} — {r.chunks} chunks in "
        f"{result.seconds:.1f} s"
    )
    if not result.complete:
        line += " (the listing was not complete: nothing was pruned)"
    return line


def sync_verb(core, names=(), progress=None, connectors=None) -> list[SyncResult]:
    """KnowledgeBase.sync_sources: `[[sources]]` entries (all when none is named) synced
    through their connectors into the core's knowledge base."""
    return sync_sources(names, core.settings, core.store, core.index_sources, progress, connectors)
