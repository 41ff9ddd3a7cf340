"""kbqa's command line: parse arguments -> library call -> print. KbqaError -> one line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from kbqa.commands import conversation
from kbqa.commands.chat import chat
from kbqa.commands.evaluate import eval_group
from kbqa.commands.stale import stale
from kbqa.commands.sync import ingest_summary as _summary
from kbqa.commands.sync import sync
from kbqa.commands.tokens import token
from kbqa.commands.tune import tune
from kbqa.errors import KbqaError
from kbqa.render import display_uri, terminal
from kbqa.settings import Settings
from kbqa.types import Answer, Evidence, Quoted


def _quiet_third_parties() -> None:
    # Model loaders print progress bars and advice meant for their own developers.
    for var, value in {
        "TRANSFORMERS_VERBOSITY": "error",
        # The hub's client logs each retry through a handler of its own and again through ours.
        "HF_HUB_VERBOSITY": "error",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(var, value)


@click.group()
@click.version_option(package_name="kbqa", message="kbqa %(version)s")
@click.option(
    "--home", type=click.Path(path_type=Path), help="Where kbqa keeps its data (KBQA_HOME)."
)
@click.option("-v", "--verbose", count=True, help="Log more on stderr (-v info, -vv debug).")
@click.option(
    "--log-level",
    metavar="LEVEL",
    help="DEBUG, INFO, WARNING or ERROR, for stderr and KBQA_HOME/logs/kbqa.log alike.",
)
@click.pass_context
def cli(ctx: click.Context, home: Path | None, verbose: int, log_level: str | None) -> None:
    """Grounded, cited answers from your own docs. Warnings and errors go to stderr and to
    KBQA_HOME/logs/kbqa.log (which also keeps info lines)."""
    from kbqa import logs

    _quiet_third_parties()
    held = _Held()  # what reading the settings warns of ("KBQA_TOPK is not a setting…"),
    logging.getLogger("kbqa.settings").addHandler(held)  # said once the log is set up
    try:
        settings = ctx.obj = Settings.load(home=home)
    finally:
        logging.getLogger("kbqa.settings").removeHandler(held)
    stderr = log_level or ("WARNING", "INFO", "DEBUG")[min(verbose, 2)]
    file_level = log_level or ("DEBUG" if verbose >= 2 else "INFO")
    ctx.meta["kbqa.home_existed"] = Path(settings.home).exists()  # before the log makes it
    logs.configure(settings.home, stderr, file_level, settings.secrets())
    ctx.call_on_close(logs.unconfigure)
    for record in held.records:
        logging.getLogger(record.name).handle(record)


class _Held(logging.Handler):
    """Log records kept until the log's handlers exist."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _kb(settings: Settings):
    from kbqa.app import KnowledgeBase  # heavy imports only once a command runs

    return KnowledgeBase(settings)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--spark",
    "master",
    default="",
    metavar="MASTER",
    help="Parse, chunk and embed as a Spark job on this master (local[4], spark://host:7077).",
)
@click.pass_obj
def ingest(settings: Settings, paths: tuple[Path, ...], master: str) -> None:
    """Ingest files and folders; unchanged files are skipped, deleted ones removed."""
    from tqdm import tqdm

    for path in paths:
        if not path.exists():
            raise KbqaError(f"{path}: no such file or directory")
    kb = _kb(settings)
    bar = None

    def progress(done: int, total: int, name: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=total,
                desc=f"Ingesting {total} files",
                unit="file",
                file=sys.stderr,
                disable=None,
                leave=False,
            )
        bar.n = done
        bar.set_postfix_str(name[:30], refresh=True)

    try:
        report = kb.ingest(list(paths), progress, spark=master)
    finally:
        if bar is not None:
            bar.close()
    # A file named on the command line that kbqa cannot read is an error, not a quiet skip:
    # said once, as the error, not also as a skipped file.
    named = {path.resolve() for path in paths if path.is_file()}
    refused = [u for u in report.unsupported if Path(u).resolve() in named]
    skipped = [u for u in report.unsupported if u not in refused]
    read = report.added + report.updated + report.unchanged + report.removed + len(report.failed)
    if read or not refused:  # not "added 0 · … failed 0" above the error alone
        click.echo(_summary(report))
    for path, why in report.failed[2:]:
        click.echo(f"  failed: {display_uri(path)}: {why}")
    if skipped:
        click.echo(f"  {_skipped(skipped)}")
    if refused:
        raise KbqaError(
            f"{display_uri(refused[0])}: not a type kbqa reads (Markdown, HTML, PDF, DOCX, "
            "reStructuredText, plain text or a Slack export: the README's 'Files and Slack')"
            + (f", nor {len(refused) - 1} more named" if len(refused) > 1 else "")
        )


def _skipped(paths: list[str], shown: int = 3) -> str:
    """'skipped 1 file of an unsupported type: notes.xyz': the first `shown` named, so that a
    user sees which files were left out, and how many more."""
    count = len(paths)
    what = "1 file of an unsupported type" if count == 1 else f"{count} files of unsupported types"
    names = ", ".join(display_uri(p) for p in paths[:shown])
    more = f" and {count - shown} more" if count > shown else ""
    return f"skipped {what}: {names}{more}"


@cli.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, 20), help="How many passages to use.")
@click.option("--extractive", is_flag=True, help="Quote the best sentences; no generator.")
@click.option(
    "--model",
    help="Generator: a name under KBQA_HOME/models, a folder, a .gguf file or a hub id; "
    "NAME@llama.cpp or NAME@transformers picks the runtime.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Only these sources: a #slack-channel, a glob on the path or URL, or a part of it.",
)
@click.option("--retriever", type=click.Choice(["dense", "bm25", "hybrid"]), help="Retrieval.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--server",
    metavar="URL",
    help="Ask a running `kbqa serve` at URL (KBQA_SERVER; token from KBQA_SERVER_TOKEN).",
)
@click.option("--local", is_flag=True, help="Answer in this process, not through a `kbqa serve`.")
@click.option("--follow-up", is_flag=True, help="Go on from the last `kbqa ask`: 'and on staging?'")
@click.pass_obj
def ask(
    settings: Settings,
    question: str,
    k: int | None,
    extractive: bool,
    model: str | None,
    sources: tuple[str, ...],
    retriever: str | None,
    as_json: bool,
    server: str | None,
    local: bool,
    follow_up: bool,
) -> None:
    """Answer a question from the knowledge base, with sources (through a `kbqa serve` running
    on the same home when there is one, unless --local, --model or --retriever)."""
    from kbqa import client

    if not question.strip():
        raise KbqaError('the question is empty: ask something, e.g. kbqa ask "how do I deploy?"')
    history = conversation.earlier(settings.home) if follow_up else []
    if follow_up and not history:
        click.echo(conversation.NOTHING, err=True)
    if server:
        settings = settings.replace(server=server)
    if settings.server and (model or retriever):
        raise KbqaError("--model and --retriever apply in-process only: leave out --server")
    found = (
        None
        if settings.server or local or model or retriever
        else client.running_server(settings.home)
    )
    if settings.server or found:
        url, token = found or (settings.server, settings.server_token)
        try:
            data = client.ask_server(url, token, question, k, extractive, sources, history)
        except client.ServerUnreachable:
            if not found:
                raise
        else:
            answer = client.answer_from_dict(data)
            conversation.keep(settings.home, history, question, answer)
            click.echo(
                json.dumps(data, ensure_ascii=False, indent=2)
                if as_json
                else terminal.answer(answer, bold=_bold)
            )
            return _no_source(answer)
    if model:
        from kbqa.assistant.generator import split_backend

        name, backend = split_backend(model)  # NAME@BACKEND, as `kbqa eval qa --model` takes it
        settings = settings.replace(generator_model=name)
        if backend:
            settings = settings.replace(generator_backend=backend)
    if retriever:
        settings = settings.replace(retrieval_mode=retriever)
    kb = _kb(settings)
    asked = {"k": k, "extractive": extractive, "history": history, "sources": list(sources)}
    if as_json:
        answer = kb.ask(question, **asked)
        conversation.keep(settings.home, history, question, answer)
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return _no_source(answer)
    # Each sentence is shown as soon as it has passed the support check, each unit of evidence
    # as soon as it is pointed at.
    shown, units = False, 0
    for event in kb.ask_stream(question, **asked):
        if isinstance(event, Evidence):
            click.echo(
                ("\n" if shown and not units else "")
                + terminal.evidence_lines(event, first=not units, bold=_bold)
            )
            units += 1
        elif isinstance(event, str) and not isinstance(event, Quoted) and not units:
            # A quote (the fallback) is shown marked at the end; after evidence, the units are
            # the answer and their joined text would repeat them.
            click.echo(("" if not shown else " ") + event, nl=False)
            shown = True
    conversation.keep(settings.home, history, question, event)
    click.echo(terminal.answer(event, text_shown=shown, evidence_shown=units > 0, bold=_bold))
    _no_source(event)


def _no_source(answer: Answer) -> None:
    """Exit 1 after an answer whose --source matched no document: a mistyped source is the
    asker's error (said in the answer), not an answer."""
    from kbqa.assistant.followup import matched_nothing

    if answer.abstained and matched_nothing(answer.reason):
        sys.exit(1)


def _bold(text: str) -> str:
    return click.style(text, bold=True)  # plain where the output is not a terminal


SHOWN_SOURCES = 10  # `kbqa status` lists this many sources, then a count


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """What is indexed: documents, chunks, models, index size, sources, last run."""
    home_existed = click.get_current_context().meta.get("kbqa.home_existed", True)
    if not home_existed and not settings.database_url:  # a mistyped --home is no new home
        raise KbqaError(
            f"no knowledge base at {Path(settings.home).resolve()} yet: `kbqa ingest PATH` "
            "makes one there (or check --home and KBQA_HOME)"
        )
    if not settings.database_made:  # an empty home: say so without making its database
        info = {"home": str(Path(settings.home).resolve()), "database": settings.db_url}
        if as_json:
            click.echo(json.dumps({**info, "documents": 0, "chunks": 0}, indent=2))
            return
        click.echo(f"home        {info['home']}")
        click.echo("documents   0 (nothing ingested yet: `kbqa ingest PATH` fills this home)")
        click.echo(f"embedder    {settings.embedding_model}")
        click.echo(f"generator   {settings.generator_model}")
        return
    info = _kb(settings).status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    run = info["last_run"]
    click.echo(f"home        {info['home']}")
    click.echo(f"database    {info['database']}")
    click.echo(f"documents   {info['documents']}")
    click.echo(f"chunks      {info['chunks']}")
    params = ", ".join(f"{k} {v}" for k, v in info["index"].items() if k != "kind")
    click.echo(
        f"index       {info['index_vectors']} vectors, {info['index_bytes'] / 1e6:.1f} MB, "
        f"{info['index']['kind']}{f' ({params})' if params else ''}"
    )
    click.echo(f"embedder    {info['embedding_model']}")
    click.echo(f"generator   {info['generator_model']}")
    if info.get("llama_cpp"):
        click.echo(f"llama.cpp   built for {info['llama_cpp']}")
    sources = info.get("sources", [])
    for i, src in enumerate(sources[:SHOWN_SOURCES]):
        name = display_uri(src["root"])
        click.echo(f"{'sources' if i == 0 else '':12}{name} ({src['documents']} documents)")
    if len(sources) > SHOWN_SOURCES:
        click.echo(f"{'':12}and {len(sources) - SHOWN_SOURCES} more (kbqa status --json)")
    if run:
        click.echo(
            f"last run    {run['started_at']} {run['status']}: added {run.get('added', 0)}, "
            f"updated {run.get('updated', 0)}, removed {run.get('removed', 0)}, "
            f"failed {run['failed']} ({', '.join(run['roots'])})"
        )
        if run.get("error"):
            click.echo(f"            {run['error']}")
    else:
        click.echo("last run    never")


@cli.command()
@click.pass_obj
def reindex(settings: Settings) -> None:
    """Rebuild the vector index from the stored embeddings (no re-embedding)."""
    size = _kb(settings).reindex()
    click.echo(f"rebuilt the index: {size} vectors")


@cli.command("slack")
@click.option("--http", is_flag=True, help="Serve Slack's HTTP events instead of Socket Mode.")
@click.option("--port", default=3000, show_default=True, help="Port for --http.")
@click.option("--manifest", is_flag=True, help="Print the Slack app manifest and exit.")
@click.pass_obj
def slack_bot(settings: Settings, http: bool, port: int, manifest: bool) -> None:
    """Run the Slack bot (Socket Mode by default: SLACK_APP_TOKEN and SLACK_BOT_TOKEN)."""
    from importlib.resources import files

    if manifest:
        click.echo(files("kbqa.integrations.slack").joinpath("manifest.yml").read_text(), nl=False)
        return
    if not settings.slack_bot_token:
        raise KbqaError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
    if http and not settings.slack_signing_secret:
        raise KbqaError("SLACK_SIGNING_SECRET is not set (needed for --http)")
    if not http and not settings.slack_app_token:
        raise KbqaError("SLACK_APP_TOKEN is not set (an xapp-… token, for Socket Mode)")
    from kbqa.integrations.slack import create_app

    kb = _kb(settings)
    kb.require_content()
    kb.follow_ingests()
    app = create_app(kb)
    mode = f"HTTP on port {port}" if http else "Socket Mode"
    click.echo(f"kbqa is answering in Slack ({mode})")
    if http:
        app.start(port=port)
    else:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(app, settings.slack_app_token).start()


@cli.command()
@click.option("--host", help="Address to listen on (serve_host; default 127.0.0.1).")
@click.option("--port", type=int, help="Port (serve_port; default 8080).")
@click.option(
    "--slack",
    is_flag=True,
    help="Also run the Slack bot: Socket Mode with SLACK_APP_TOKEN, else Slack's HTTP events "
    "at /slack/events (SLACK_SIGNING_SECRET).",
)
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, slack: bool) -> None:
    """Serve the web page, the HTTP API and an OpenAI-compatible endpoint."""
    if host:
        settings = settings.replace(serve_host=host)
    if port:
        settings = settings.replace(serve_port=port)
    from kbqa.logs import log_file

    try:
        from kbqa.serve import create_app
        from kbqa.serve.app import run
    except ImportError:
        raise KbqaError("the server's packages are missing: pip install 'kbqa[serve]'") from None
    _check_port(settings.serve_host, settings.serve_port)
    kb = _kb(settings)
    bolt, socket_mode = None, None
    if slack:
        bolt, socket_mode = _slack_for_serve(kb, settings)
    # The snapshot and the embedder are loaded before the first question, not during it.
    if not kb.warm_up():
        click.echo("the knowledge base is empty: run `kbqa ingest PATH` (questions get 503)")
    kb.follow_ingests()  # another process's ingest is searched before the next question
    app = create_app(kb, slack=None if socket_mode else bolt)
    app.state.syncs.start()  # the [[sources]] that have a schedule_minutes
    if socket_mode is not None:
        socket_mode.connect()  # in its own threads: the web server runs beside it
    where = f"http://{settings.serve_host}:{settings.serve_port}/"
    click.echo(f"kbqa is serving {where}{' and answering in Slack' if slack else ''}")
    click.echo(f"each request is logged in {log_file(Path(settings.home).resolve())}")
    try:
        run(app, settings.serve_host, settings.serve_port, settings.home)
    finally:
        click.echo("kbqa stopped serving")


def _slack_for_serve(kb, settings: Settings):
    """(the Bolt app, a Socket Mode handler or None for HTTP events)."""
    if not settings.slack_bot_token:
        raise KbqaError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
    from kbqa.integrations.slack import create_app as create_slack_app

    bolt = create_slack_app(kb)
    if settings.slack_app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        return bolt, SocketModeHandler(bolt, settings.slack_app_token)
    if not settings.slack_signing_secret:
        raise KbqaError(
            "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP events) for --slack"
        )
    return bolt, None


cli.add_command(eval_group)
cli.add_command(tune)
cli.add_command(token)
cli.add_command(sync)
cli.add_command(stale)
cli.add_command(chat)


class PortInUse(KbqaError):
    exit_code = 2


def _check_port(host: str, port: int) -> None:
    """A port another process listens on is one line (rc 2), before anything is loaded."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another process uses "
                "it; stop it or pick another with --port"
            ) from None


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except KbqaError as exc:
        home = getattr(exc, "home", None)
        click.echo(f"kbqa: error: {exc}" + (f" (home {home})" if home else ""), err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except click.exceptions.Abort:
        click.echo("kbqa: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
