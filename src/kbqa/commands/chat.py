"""`kbqa chat`: questions in a loop, each follow-up searched with the conversation so far."""

from __future__ import annotations

import sys

import click

from kbqa.render import terminal
from kbqa.settings import Settings

TURNS = 3  # the earlier turns a question is asked with


@click.command()
@click.option("--extractive", is_flag=True, help="Quote the best sentences; no generator.")
@click.option("--source", "sources", multiple=True, help="Only these sources (as `kbqa ask`).")
@click.pass_obj
def chat(settings: Settings, extractive: bool, sources: tuple[str, ...]) -> None:
    """Ask, then ask follow-ups ("and a SEV2?" after a question about SEV1 pages); an empty line
    or Ctrl-D ends."""
    from kbqa.app import KnowledgeBase

    kb = KnowledgeBase(settings)
    kb.require_content()
    history: list[tuple[str, str]] = []
    typed = sys.stdin.isatty()  # questions piped in get no prompt between the answers
    while True:
        try:
            if typed:
                question = click.prompt("?", prompt_suffix=" ", default="", show_default=False)
            else:
                question = sys.stdin.readline()
        except (EOFError, click.exceptions.Abort):
            break
        if not question.strip():
            break
        answer = kb.ask(question, extractive=extractive, history=history, sources=list(sources))
        # terminal.answer says what was searched for, when a follow-up was made standalone.
        click.echo(terminal.answer(answer, bold=lambda t: click.style(t, bold=True)) + "\n")
        if not answer.abstained:
            history = [*history, (question, answer.text)][-TURNS:]
        elif history:  # as `kbqa ask --follow-up` says: an unanswered turn is not gone on from
            click.echo("(not answered, so the next question goes on from the last answered one)\n")
        else:
            click.echo("(not answered, so the next question is searched as asked)\n")
