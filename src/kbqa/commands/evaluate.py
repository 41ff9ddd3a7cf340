"""`kbqa eval`: retrieval and answer quality on public benchmarks (BEIR layout), each dataset in
a knowledge base of its own under KBQA_HOME/evals."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kbqa.errors import KbqaError
from kbqa.evals.datasets import DATASETS
from kbqa.settings import Settings


@click.group("eval")
def eval_group() -> None:
    """Measure retrieval and answers on public benchmarks (BEIR layout)."""


@eval_group.command("prepare")
@click.argument("name", type=click.Choice(list(DATASETS)))
@click.option("--sample", type=int, help="halueval-qa: how many questions (default 1000).")
@click.pass_obj
def eval_prepare(settings: Settings, name: str, sample: int | None) -> None:
    """Build a dataset from installed packages into KBQA_HOME/datasets."""
    from kbqa.evals.datasets import prepare

    folder = prepare(name, settings.home / "datasets", sample=sample)
    click.echo(f"{name} is ready in {folder}")


def open_dataset(settings: Settings, dataset: str, split: str):
    """(name, data, knowledge base) of a prepared name or a BEIR folder; each dataset gets a
    knowledge base of its own under KBQA_HOME/evals, so the user's stays untouched."""
    from kbqa.app import KnowledgeBase
    from kbqa.evals.beir import load_beir

    folder = Path(dataset) if Path(dataset).is_dir() else settings.home / "datasets" / dataset
    data = load_beir(folder)
    if split not in data.qrels:
        raise KbqaError(f"{folder}: no qrels/{split}.tsv (splits: {', '.join(data.qrels)})")
    name = folder.name
    return name, data, KnowledgeBase(settings.replace(home=settings.home / "evals" / name))


class Bars:
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


def report_folder(settings: Settings, name: str, kind: str, out: Path | None) -> Path:
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

    name, data, kb = open_dataset(settings, dataset, split)
    out = report_folder(settings, name, "retrieval", out)
    bars = Bars()
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

    name, data, kb = open_dataset(settings, dataset, split)
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
    out = report_folder(settings, name, "qa", out)
    bars = Bars()
    evaluate_qa(kb, data, name, split, configs, out, limit, bars, gated)
    bars.close()
    click.echo((out / "report.md").read_text())
    click.echo(f"report: {out}")
