"""`kbqa chat`: questions in a loop, each follow-up searched with the conversation so far."""

from __future__ import annotations

import sys

import click

from kbqa.render import terminal
from kbqa.settings import Settings
from kbqa.types import Answer

TURNS = 3  # the earlier turns a question is asked with


@click.command()
@click.option("--extractive", is_flag=True, help="Quote the best sentences; no generator.")
@click.option("--source", "sources", multiple=True, help="Only these sources (as `kbqa ask`).")
@click.option("--local", is_flag=True, help="Answer in this process even if a server runs.")
@click.pass_obj
def chat(settings: Settings, extractive: bool, sources: tuple[str, ...], local: bool) -> None:
    """Ask, then ask follow-ups ("and a SEV2?" after a question about SEV1 pages), through a
    `kbqa serve` running on the same home when there is one (its models are not loaded a second
    time), unless --local; an empty line or Ctrl-D ends."""
    asker = Asker(settings, local)
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
        answer = asker.ask(question, extractive, history, list(sources))
        # terminal.answer says what was searched for, when a follow-up was made standalone.
        click.echo(terminal.answer(answer, bold=lambda t: click.style(t, bold=True)) + "\n")
        if not answer.abstained:
            history = [*history, (question, answer.text)][-TURNS:]
        elif history:  # as `kbqa ask --follow-up` says: an unanswered turn is not gone on from
            click.echo("(not answered, so the next question goes on from the last answered one)\n")
        else:
            click.echo("(not answered, so the next question is searched as asked)\n")


class Asker:
    """Answers through the server running on the home (or `settings.server`), else in this
    process; a server that goes away mid-conversation is replaced by this process's models."""

    def __init__(self, settings: Settings, local: bool):
        from kbqa import client

        self.settings, self.kb = settings, None
        found = None if local or settings.server else client.running_server(settings.home)
        self.server = found or (
            (settings.server, settings.server_token) if settings.server else None
        )
        if found:
            click.echo(f"(answering through the kbqa server running on this home, {found[0]})\n")
        elif not self.server:
            self._local()  # an empty knowledge base is said before the first question

    def _local(self):
        from kbqa.app import KnowledgeBase

        if self.kb is None:
            self.kb = KnowledgeBase(self.settings)
            self.kb.require_content()
        return self.kb

    def ask(self, question: str, extractive: bool, history: list, sources: list[str]) -> Answer:
        from kbqa import client

        if self.server:
            url, token = self.server
            try:
                data = client.ask_server(url, token, question, None, extractive, sources, history)
            except client.ServerUnreachable:
                if self.settings.server:
                    raise  # the server asked for by name: its error, not a silent change
                self.server = None
                click.echo("(the server went away: answering in this process from now on)\n")
            else:
                return client.answer_from_dict(data)
        return self._local().ask(question, extractive=extractive, history=history, sources=sources)
