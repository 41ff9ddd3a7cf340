"""`kbqa stale`: the sources to fix first, the stale ones that ground the most rated answers
and the pairs of sources that disagree."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from kbqa.settings import Settings


@click.command()
@click.option("--limit", default=20, show_default=True, help="Rows in each list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stale(settings: Settings, limit: int, as_json: bool) -> None:
    """Sources not updated for stale_after_days, the most cited by rated answers first, and
    the pairs of sources that give different values for the same thing."""
    from kbqa.app import KnowledgeBase
    from kbqa.render import display_uri
    from kbqa.render.terminal import unticked
    from kbqa.stale import conflicts, oldest_days, stale_sources

    kb = KnowledgeBase(settings)
    old, pairs = stale_sources(kb, limit), conflicts(kb, limit)
    if as_json:
        data = {"stale": [asdict(s) for s in old], "disagree": [asdict(p) for p in pairs]}
        click.echo(json.dumps(data, indent=1, ensure_ascii=False))
        return
    click.echo(f"Not updated for {settings.stale_after_days} days or more ({len(old)}):")
    days = None if old else oldest_days(kb)
    if days is not None:
        click.echo(
            f"  none: the oldest source was updated {days} days ago "
            f"(KBQA_STALE_AFTER_DAYS={max(days, 1)} kbqa stale lists it)"
        )
    for s in old:
        rated = f"cited by {s.cited} rated answers (👍 {s.liked} 👎 {s.disliked})"
        by = f" by {s.author}" if s.author else ""
        click.echo(f"  {s.updated_at[:10]}{by} · {s.days} days · {rated}")
        click.echo(f"    {unticked(s.title)} — {display_uri(s.uri)}")
    click.echo(f"Sources that disagree ({len(pairs)}):")
    if not pairs:
        click.echo("  none: no two sources give different values for the same thing")
    for p in pairs:
        click.echo(f"  {p.newer_updated_at[:10]} {display_uri(p.newer_uri)}: {p.newer_sentence}")
        click.echo(f"  {p.older_updated_at[:10]} {display_uri(p.older_uri)}: {p.older_sentence}")
        click.echo("")
