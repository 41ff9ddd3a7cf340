"""`kbqa sync [NAME…]`: the `[[sources]]` of kbqa.toml through their connectors, and
`kbqa sync slack --channel C`: new threads of Slack channels."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kbqa.errors import KbqaError
from kbqa.settings import Settings


@click.command()
@click.argument("names", nargs=-1)
@click.option(
    "--channel", "channels", multiple=True, help="With `sync slack`: a channel name (repeat)."
)
@click.pass_obj
def sync(settings: Settings, names: tuple[str, ...], channels: tuple[str, ...]) -> None:
    """Pull what changed from live services: each NAME of kbqa.toml's [[sources]] (all when
    none is named), or `slack --channel C` for Slack threads (bot token from SLACK_BOT_TOKEN)."""
    from kbqa.app import KnowledgeBase

    if names[:1] == ("slack",) and not any(c.name == "slack" for c in settings.sources):
        if not channels:
            raise KbqaError("kbqa sync slack needs --channel NAME (repeat for more)")
        report, read = KnowledgeBase(settings).sync_slack([c.lstrip("#") for c in channels])
        for name, count in read.items():
            click.echo(f"#{name}: {count} new messages")
        click.echo(ingest_summary(report))
        return
    if channels:
        raise KbqaError("--channel goes with `kbqa sync slack`")
    from kbqa.ingest.connect import configured, summary

    configured(settings, names)  # an unknown name fails before anything is opened
    kb = KnowledgeBase(settings)
    failed = 0
    for name in names or [c.name for c in settings.sources]:
        with _Bar(name) as bar:
            (result,) = kb.sync_sources([name], bar.progress)
        click.echo(summary(result))
        for item, why in result.failed[2:]:
            click.echo(f"  failed: {item}: {why}")
        failed += bool(result.error)
    if failed:
        raise SystemExit(1)


def ingest_summary(report) -> str:
    """An ingest report as the one line `kbqa ingest` and `kbqa sync slack` print."""
    failed = f"failed {len(report.failed)}"
    if report.failed:
        # "; " between files: a reason may itself hold a comma ("binary data, not text").
        shown = "; ".join(f"{Path(p).name}: {why}" for p, why in report.failed[:2])
        failed += f" ({shown}{'; …' if len(report.failed) > 2 else ''})"
    return (
        f"added {report.added} · updated {report.updated} · unchanged {report.unchanged} · "
        f"removed {report.removed} · {failed} — {report.chunks} chunks in {report.seconds:.1f} s"
    )


class _Bar:
    """A tqdm bar on stderr while one source is synced (none where stderr is not a terminal)."""

    def __init__(self, name: str):
        self.name, self.bar = name, None

    def progress(self, done: int, total: int, item: str) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=total,
                desc=f"Syncing {self.name}",
                unit="item",
                file=sys.stderr,
                disable=None,
                leave=False,
            )
        self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(item[:30], refresh=True)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
