"""`kbqa token`: API tokens for `kbqa serve`, each seeing only the sources it is given."""

from __future__ import annotations

import click

from kbqa.settings import Settings


@click.group()
def token() -> None:
    """API tokens for `kbqa serve`: each one sees only the sources it is given."""


@token.command("create")
@click.option("--name", required=True, help="Who or what the token is for.")
@click.option(
    "--sources",
    "sources",
    multiple=True,
    metavar="PATTERN",
    help="A source it may see (repeat): a #slack-channel, a glob on the path or URL, or a part "
    "of it. None: every source but private Slack channels.",
)
@click.option(
    "--principal",
    "principals",
    multiple=True,
    metavar="KIND:SCOPE",
    help="A connector principal it holds (repeat), e.g. confluence-space:ENG, "
    "jira-project:OPS, github-repo:acme/api: it sees their restricted documents.",
)
@click.option("--admin", is_flag=True, help="May also open the admin page.")
@click.pass_obj
def token_create(
    settings: Settings,
    name: str,
    sources: tuple[str, ...],
    principals: tuple[str, ...],
    admin: bool,
) -> None:
    """Make a token; its secret is printed once (only a hash of it is stored)."""
    from kbqa.app import KnowledgeBase

    kb = KnowledgeBase(settings)
    secret, info = kb.create_token(name, list(sources), admin, list(principals))
    click.echo(secret)
    scope = ", ".join(info.sources) or "every source but private Slack channels"
    click.echo(
        f"token {info.name!r} ({scope}{'; admin' if admin else ''}): "
        "keep it now, it is not shown again",
        err=True,
    )


@token.command("list")
@click.pass_obj
def token_list(settings: Settings) -> None:
    """The tokens: name, first characters, sources, last use."""
    from kbqa.app import KnowledgeBase

    rows = KnowledgeBase(settings).tokens()
    if not rows:
        click.echo("no tokens: kbqa token create --name NAME --sources PATTERN")
    for t in rows:
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never used"
        state = "revoked" if t.revoked else "live"
        scope = " ".join(t.sources) or "(all but private)"
        scope += "".join(f" {p}" for p in t.principals)
        click.echo(f"{t.name}\t{t.prefix}…\t{state}{' admin' if t.admin else ''}\t{scope}\t{used}")


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(settings: Settings, name: str) -> None:
    """Revoke the token NAME: it stops working at once."""
    from kbqa.app import KnowledgeBase

    KnowledgeBase(settings).revoke_token(name)
    click.echo(f"revoked {name}")
