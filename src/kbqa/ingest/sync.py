"""`kbqa sync`: new threads of Slack channels from the Slack API, each channel from where its
last sync stopped (a cursor per channel in the store)."""

from __future__ import annotations

import re
from collections.abc import Callable

from kbqa.errors import KbqaError
from kbqa.ingest.pipeline import STAGES, IngestReport, Progress
from kbqa.ingest.sources import Source, documents_source
from kbqa.settings import Settings
from kbqa.store import SlackCursorRow, Store


def sync_slack(
    channels: list[str],
    settings: Settings,
    store: Store,
    index_sources: Callable[[list[Source], Progress | None], IngestReport],
    client=None,
    progress: Progress | None = None,
) -> tuple[IngestReport, dict[str, int]]:
    """Index new threads of the named channels with `index_sources` (the core's write path);
    returns the report and the messages read per channel. `client`: a slack_sdk WebClient
    (default: one with the bot token)."""
    from kbqa.ingest.slack import Conversation, build_documents
    from kbqa.ingest.slack_api import SlackFetcher, make_client

    s = settings
    if client is None:
        if not s.slack_bot_token:
            raise KbqaError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        client = make_client(s.slack_bot_token)
    fetcher = SlackFetcher(client)
    workspace = s.slack_workspace or fetcher.workspace()
    found = fetcher.channels(channels)
    names = {cid: name for cid, name, _ in found}
    total, read = IngestReport(stages=dict.fromkeys(STAGES, 0.0)), {}
    for cid, name, private in found:
        with store.session() as session:
            cursor = session.get(SlackCursorRow, cid)
            oldest = cursor.last_ts if cursor else None
        fetched = fetcher.fetch(cid, name, private, oldest)
        read[name] = len(fetched.messages)
        mentioned = {m.get("user", "") for m in fetched.messages} | {
            uid for m in fetched.messages for uid in re.findall(r"<@([A-Z0-9]+)", m.get("text", ""))
        }
        users = fetcher.user_names({u for u in mentioned if u})
        documents, warnings = build_documents(
            Conversation(cid, name, private),
            fetched.messages,
            users,
            names,
            workspace,
            s.slack_include_bots,
            max_chars=s.chunk_max_chars,
        )
        source = documents_source(f"slack-api:{cid}", "slack-api", documents, complete=False)
        source.problems = [(f"#{name}", w) for w in warnings]
        merge(total, index_sources([source], progress))
        # Only after the threads are stored: a crash before this re-reads them next time.
        with store.session() as session:
            session.merge(SlackCursorRow(channel_id=cid, name=name, last_ts=fetched.latest_ts))
            session.commit()
    return total, read


def merge(total: IngestReport, report: IngestReport) -> None:
    """Add `report`'s counts, failures and stage times to `total`."""
    for name in ("added", "updated", "unchanged", "removed", "chunks", "embedded", "seconds"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    total.failed += report.failed
    for stage, seconds in report.stages.items():
        total.stages[stage] = total.stages.get(stage, 0.0) + seconds
