"""kbqa's command line: parse arguments -> library call -> print. KbqaError -> one line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from kbqa.errors import KbqaError
from kbqa.render import display_uri, terminal
from kbqa.settings import TUNE_BASE, Settings
from kbqa.types import Evidence, Quoted


def _quiet_third_parties() -> None:
    # Model loaders print progress bars and advice meant for their own developers.
    for var, value in {
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(var, value)


@click.group()
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
    settings = ctx.obj = Settings.load(home=home)
    stderr = log_level or ("WARNING", "INFO", "DEBUG")[min(verbose, 2)]
    file_level = log_level or ("DEBUG" if verbose >= 2 else "INFO")
    logs.configure(settings.home, stderr, file_level, settings.secrets())
    ctx.call_on_close(logs.unconfigure)


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
    click.echo(_summary(report))
    for path, why in report.failed[2:]:
        click.echo(f"  failed: {display_uri(path)}: {why}")
    if report.unsupported:
        click.echo(f"  skipped {len(report.unsupported)} files of unsupported types")


def _summary(report) -> str:
    failed = f"failed {len(report.failed)}"
    if report.failed:
        shown = ", ".join(f"{Path(p).name}: {why}" for p, why in report.failed[:2])
        failed += f" ({shown}{', …' if len(report.failed) > 2 else ''})"
    return (
        f"added {report.added} · updated {report.updated} · unchanged {report.unchanged} · "
        f"removed {report.removed} · {failed} — {report.chunks} chunks in {report.seconds:.1f} s"
    )


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
) -> None:
    """Answer a question from the knowledge base, with sources."""
    if server:
        settings = settings.replace(server=server)
    if settings.server:
        if model or retriever:
            raise KbqaError("--model and --retriever apply in-process only: leave out --server")
        from kbqa.client import answer_from_dict, ask_server

        data = ask_server(settings.server, settings.server_token, question, k, extractive, sources)
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            click.echo(terminal.answer(answer_from_dict(data), bold=_bold))
        return
    if model:
        from kbqa.assistant.generator import split_backend

        name, backend = split_backend(model)  # NAME@BACKEND, as `kbqa eval qa --model` takes it
        settings = settings.replace(generator_model=name)
        if backend:
            settings = settings.replace(generator_backend=backend)
    if retriever:
        settings = settings.replace(retrieval_mode=retriever)
    kb = _kb(settings)
    if as_json:
        answer = kb.ask(question, k=k, extractive=extractive, sources=list(sources))
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    # Each sentence is shown as soon as it has passed the support check, each unit of evidence
    # as soon as it is pointed at.
    shown, units = False, 0
    for event in kb.ask_stream(question, k=k, extractive=extractive, sources=list(sources)):
        if isinstance(event, Evidence):
            click.echo(
                ("\n" if shown and not units else "")
                + terminal.evidence_lines(event, first=not units, bold=_bold)
            )
            units += 1
        elif isinstance(event, str) and not isinstance(event, Quoted):  # a quote: shown marked
            click.echo(("" if not shown else " ") + event, nl=False)
            shown = True
    answer = event
    click.echo(terminal.answer(answer, text_shown=shown, evidence_shown=units > 0, bold=_bold))


def _bold(text: str) -> str:
    return click.style(text, bold=True)  # plain where the output is not a terminal


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """What is indexed: documents, chunks, models, index size, last run."""
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


@cli.group("eval")
def eval_group() -> None:
    """Measure retrieval and answers on public benchmarks (BEIR layout)."""


@eval_group.command("prepare")
@click.argument("name", type=click.Choice(["python-faq", "halueval-qa"]))
@click.option("--sample", type=int, help="halueval-qa: how many questions (default 1000).")
@click.pass_obj
def eval_prepare(settings: Settings, name: str, sample: int | None) -> None:
    """Build a dataset from installed packages into KBQA_HOME/datasets."""
    from kbqa.evals.datasets import prepare

    folder = prepare(name, settings.home / "datasets", sample=sample)
    click.echo(f"{name} is ready in {folder}")


def _dataset(settings: Settings, dataset: str, split: str):
    """(name, data, knowledge base) of a prepared name or a BEIR folder; each dataset gets a
    knowledge base of its own under KBQA_HOME/evals, so the user's stays untouched."""
    from kbqa.app import KnowledgeBase
    from kbqa.evals.datasets import load_beir

    folder = Path(dataset) if Path(dataset).is_dir() else settings.home / "datasets" / dataset
    data = load_beir(folder)
    if split not in data.qrels:
        raise KbqaError(f"{folder}: no qrels/{split}.tsv (splits: {', '.join(data.qrels)})")
    name = folder.name
    return name, data, KnowledgeBase(settings.replace(home=settings.home / "evals" / name))


class _Bars:
    """One tqdm bar per stage label, each closed when the next starts."""

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if label not in self.bars:
            self.close()
            self.bars[label] = tqdm(total=total, desc=label, file=sys.stderr, disable=None)
        self.bars[label].n = done + 1
        self.bars[label].refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _report_folder(settings: Settings, name: str, kind: str, out: Path | None) -> Path:
    from datetime import datetime

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return out or settings.home / "reports" / f"{name}-{kind}-{stamp}"


@eval_group.command("retrieval")
@click.argument("dataset")
@click.option("--split", default="test", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Report folder.")
@click.pass_obj
def eval_retrieval(settings: Settings, dataset: str, split: str, out: Path | None) -> None:
    """Every retriever on DATASET (a prepared name or a BEIR folder), side by side."""
    from kbqa.evals.retrieval import evaluate_retrieval

    name, data, kb = _dataset(settings, dataset, split)
    out = _report_folder(settings, name, "retrieval", out)
    bars = _Bars()
    evaluate_retrieval(kb, data, name, split, out, bars)
    bars.close()
    click.echo((out / "report.md").read_text())
    click.echo(f"report: {out}")


@eval_group.command("qa")
@click.argument("dataset")
@click.option("--split", default="test", show_default=True)
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Another generator to compare (a name under KBQA_HOME/models, folder or HF id; "
    "NAME@llama.cpp or NAME@transformers picks the runtime).",
)
@click.option("--base/--no-base", default=True, help="Include the configured generator.")
@click.option("--extractive/--no-extractive", default=True, help="Include the extractive answerer.")
@click.option("--limit", type=int, help="Only the first N questions of the split.")
@click.option(
    "--gated",
    is_flag=True,
    help="Apply the abstention gate while answering: nothing is generated below it (faster; "
    "the coverage curve below the gate is then not measured).",
)
@click.option("--out", type=click.Path(path_type=Path), help="Report folder.")
@click.pass_obj
def eval_qa(
    settings: Settings,
    dataset: str,
    split: str,
    models: tuple[str, ...],
    base: bool,
    extractive: bool,
    limit: int | None,
    gated: bool,
    out: Path | None,
) -> None:
    """Answer quality, citations and abstention on DATASET (needs answers.jsonl)."""
    from kbqa.assistant.generator import make_generator, split_backend
    from kbqa.evals.qa import Config, evaluate_qa

    name, data, kb = _dataset(settings, dataset, split)
    names = list(dict.fromkeys(([settings.generator_model] if base else []) + list(models)))
    if not names and not extractive:
        raise KbqaError("nothing to evaluate: keep --base or --extractive, or name a --model")
    configs = [Config("extractive")] if extractive else []
    # Generators come from the user's home (KBQA_HOME/models), not the dataset's.
    for label in names:
        # NAME@BACKEND compares one model on two runtimes ("SmolLM2-135M-Instruct@transformers").
        model, backend = split_backend(label)
        generator = make_generator(
            model,
            settings.models_dir,
            settings.device,
            settings.model_cache,
            backend or settings.generator_backend,
            settings.generator_threads,
            settings.generator_precision,
        )
        configs.append(Config(label, generator))
    out = _report_folder(settings, name, "qa", out)
    bars = _Bars()
    evaluate_qa(kb, data, name, split, configs, out, limit, bars, gated)
    bars.close()
    click.echo((out / "report.md").read_text())
    click.echo(f"report: {out}")


@cli.group()
def tune() -> None:
    """Instruction-tune the generator on your own questions and answers."""


@tune.command("data")
@click.option(
    "--halueval/--no-halueval",
    default=True,
    help="Include halueval-qa's training split (prepared if missing).",
)
@click.option(
    "--include-private",
    is_flag=True,
    help="Also train on private Slack channels and on feedback given in private channels/DMs.",
)
@click.pass_obj
def tune_data(settings: Settings, halueval: bool, include_private: bool) -> None:
    """Build training examples (KBQA_HOME/tune/train.jsonl) from resolved Slack threads,
    👍-rated answers and halueval-qa's training split, in the answerer's prompt format."""
    from kbqa.app import KnowledgeBase
    from kbqa.tune import build_training_data

    out = settings.home / "tune" / "train.jsonl"
    kb = _kb(settings)
    halueval_kb = (
        KnowledgeBase(settings.replace(home=settings.home / "evals" / "halueval-qa"))
        if halueval
        else None
    )
    bars = _Bars()
    counts = build_training_data(
        kb,
        out,
        halueval_dir=settings.home / "datasets" / "halueval-qa" if halueval else None,
        halueval_kb=halueval_kb,
        include_private=include_private,
        progress=lambda done, total: bars("halueval-qa", done, total),
    )
    bars.close()
    for source, count in counts.items():
        click.echo(f"{source:>17}: {count}")
    click.echo(f"{sum(counts.values())} examples in {out}")


@tune.command("distill")
@click.argument("answers", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--abstain-share",
    type=float,
    default=0.1,  # kbqa.tune.distill.ABSTAIN_SHARE (not imported here: the CLI starts fast)
    show_default=True,
    help="The share of abstention examples (taken from KBQA_HOME/tune/train.jsonl).",
)
@click.option("--out", type=click.Path(path_type=Path), help="Default: KBQA_HOME/tune/own.jsonl.")
@click.pass_obj
def tune_distill(settings: Settings, answers: Path, abstain_share: float, out: Path | None) -> None:
    """Training examples from the generator's own answers: ANSWERS is the answers-*.jsonl of
    `kbqa eval qa halueval-qa --split train --no-extractive`; answers that hold the reference,
    cite the gold passage and pass the check whole become targets."""
    from kbqa.tune.data import write_examples
    from kbqa.tune.distill import distilled_examples, with_abstentions

    _, data, kb = _dataset(settings, "halueval-qa", "train")
    kept, skipped = distilled_examples(kb, data, answers)
    if not kept:
        raise KbqaError(f"{answers}: no answer qualified ({dict(skipped)})")
    examples = with_abstentions(kept, settings.home / "tune" / "train.jsonl", abstain_share)
    out = out or settings.home / "tune" / "own.jsonl"
    write_examples(examples, out)
    click.echo(f"kept {len(kept)} of {len(kept) + sum(skipped.values())} answers")
    for reason, count in skipped.most_common():
        click.echo(f"  {count:>5}  {reason}")
    click.echo(f"{len(examples)} examples ({len(examples) - len(kept)} abstentions) in {out}")
    click.echo(f"next: kbqa tune train --data {out}")


@tune.command("train")
@click.option("--name", default="smollm2-kbqa", show_default=True, help="KBQA_HOME/models/NAME.")
@click.option(
    "--data", type=click.Path(path_type=Path), help="Default: KBQA_HOME/tune/train.jsonl."
)
@click.option("--method", type=click.Choice(["full", "lora"]), default="full", show_default=True)
@click.option("--steps", type=int, default=50, show_default=True, help="Optimizer steps.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Examples per step.")
@click.option("--learning-rate", type=float, help="Default: 5e-5 (full), 5e-4 (lora).")
@click.option(
    "--max-length", type=int, default=768, show_default=True, help="Longer examples are left out."
)
@click.option("--fresh", is_flag=True, help="Ignore a checkpoint instead of resuming from it.")
@click.option(
    "--base",
    default=TUNE_BASE,
    show_default=True,
    help="The model to fine-tune (a packaged name, folder or hub id).",
)
@click.pass_obj
def tune_train(
    settings: Settings,
    name: str,
    data: Path | None,
    method: str,
    steps: int,
    batch_size: int,
    learning_rate: float | None,
    max_length: int,
    fresh: bool,
    base: str,
) -> None:
    """Fine-tune a generator (the small packaged one by default); the result answers with
    `kbqa ask --model NAME`."""
    from kbqa.tune.train import TrainConfig, train

    rate = learning_rate or (5e-5 if method == "full" else 5e-4)
    config = TrainConfig(
        method=method,
        steps=steps,
        batch_size=batch_size,
        learning_rate=rate,
        max_length=max_length,
    )
    folder = train(
        data or settings.home / "tune" / "train.jsonl",
        name,
        settings.models_dir,
        base=base,
        config=config,
        device=settings.device,
        precision=settings.generator_precision,
        resume=not fresh,
    )
    click.echo(f"saved {folder}: try `kbqa ask --model {name} QUESTION`")


@cli.group()
def sync() -> None:
    """Pull new content from a live service."""


@sync.command("slack")
@click.option("--channel", "channels", multiple=True, required=True, help="A channel name.")
@click.pass_obj
def sync_slack(settings: Settings, channels: tuple[str, ...]) -> None:
    """Index new Slack threads of the channels (bot token from SLACK_BOT_TOKEN)."""
    report, read = _kb(settings).sync_slack([c.lstrip("#") for c in channels])
    for name, count in read.items():
        click.echo(f"#{name}: {count} new messages")
    click.echo(_summary(report))


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
    try:
        import uvicorn

        from kbqa.serve import create_app
    except ImportError:
        raise KbqaError("the server's packages are missing: pip install 'kbqa[serve]'") from None
    kb = _kb(settings)
    bolt, socket_mode = None, None
    if slack:
        bolt, socket_mode = _slack_for_serve(kb, settings)
    if kb.store.counts()["chunks"]:
        kb.snapshot  # noqa: B018 - build the search snapshot and load the models before the
        kb.embedder.embed(["warm up"])  # first question, not during it
    else:
        click.echo("the knowledge base is empty: run `kbqa ingest PATH` (questions get 503)")
    app = create_app(kb, slack=None if socket_mode else bolt)
    if socket_mode is not None:
        socket_mode.connect()  # in its own threads: the web server runs beside it
    where = f"http://{settings.serve_host}:{settings.serve_port}/"
    click.echo(f"kbqa is serving {where}{' and answering in Slack' if slack else ''}")
    uvicorn.run(
        app,
        host=settings.serve_host,
        port=settings.serve_port,
        log_level="warning",
        access_log=False,
    )


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


@cli.group()
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
@click.option("--admin", is_flag=True, help="May also open the admin page.")
@click.pass_obj
def token_create(settings: Settings, name: str, sources: tuple[str, ...], admin: bool) -> None:
    """Make a token; its secret is printed once (only a hash of it is stored)."""
    from kbqa.store import Store, tokens

    settings.home.mkdir(parents=True, exist_ok=True)
    secret, info = tokens.create(Store(settings.db_url), name, list(sources), admin)
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
    from kbqa.store import Store, tokens

    rows = tokens.listed(Store(settings.db_url))
    if not rows:
        click.echo("no tokens: kbqa token create --name NAME --sources PATTERN")
    for t in rows:
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never used"
        state = "revoked" if t.revoked else "live"
        scope = " ".join(t.sources) or "(all but private)"
        click.echo(f"{t.name}\t{t.prefix}…\t{state}{' admin' if t.admin else ''}\t{scope}\t{used}")


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(settings: Settings, name: str) -> None:
    """Revoke the token NAME: it stops working at once."""
    from kbqa.store import Store, tokens

    tokens.revoke(Store(settings.db_url), name)
    click.echo(f"revoked {name}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except KbqaError as exc:
        click.echo(f"kbqa: error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("kbqa: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
