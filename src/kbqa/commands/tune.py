"""`kbqa tune`: instruction-tune the generator on your own questions and answers."""

from __future__ import annotations

from pathlib import Path

import click

from kbqa.commands.evaluate import Bars, open_dataset
from kbqa.errors import KbqaError
from kbqa.settings import TUNE_BASE, Settings


@click.group()
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
    kb = KnowledgeBase(settings)
    halueval_kb = (
        KnowledgeBase(settings.replace(home=settings.home / "evals" / "halueval-qa"))
        if halueval
        else None
    )
    bars = Bars()
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
    from kbqa.tune.distill import distilled_examples, with_abstentions
    from kbqa.tune.examples import write_examples

    _, data, kb = open_dataset(settings, "halueval-qa", "train")
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
