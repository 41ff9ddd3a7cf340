"""Fine-tune the generator on `kbqa tune data`'s examples; the loss is on the reply tokens only.

Full fine-tuning by default, not LoRA, by measurement: SmolLM2-135M on this 2-core CPU, both
trained step by step on the same halueval batches (4 examples, ~530 tokens each), interleaved so
the CPU's other load hit both alike. LoRA (r=16 on every projection, lr 5e-4) was only ~20 %
faster per step (59 s against 74 s for 4 examples under load: the backward pass still runs
through every activation; only the frozen weights' gradients are saved, and the adapters add
work), while its loss stayed behind full fine-tuning (lr 5e-5) after every update (1.82, 2.31,
1.60, 0.74 against 1.42, 2.04, 1.17, 0.49 on the same unseen batches) and on 8 held-out examples
after 5 steps (1.28 against 0.96) — so full fine-tuning is ahead per second too. A 135M
model's weights and AdamW state (~1.6 GB) fit easily, so LoRA's memory saving buys nothing
here. `method="lora"` remains for larger generators (it needs `pip install peft`); the merged
result is a plain model folder either way.

Defaults: 50 steps of 8 examples (400 of the ~2,400 halueval examples), sequences of at most
768 tokens (the longest 1 % are left out). ~45 minutes is an estimate for two idle cores; far less
on a GPU, where `steps`, `batch_size` and `micro_batch` can grow.

The result is a plain model folder KBQA_HOME/models/NAME (LoRA weights merged in) that
`TransformersGenerator` loads like any other, with `kbqa-tune.json` beside the weights: the data
file and its hash, the counts per source, the hyper-parameters, the base model, the steps, the
loss curve and the training time. A checkpoint is written every `checkpoint_every` steps under
`work_dir`; running again with the same data and settings resumes from it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kbqa.assistant.generator import resolve_model
from kbqa.errors import KbqaError, ModelError
from kbqa.retrieval.device import precision_dtype, torch_device
from kbqa.settings import TUNE_BASE
from kbqa.tune.examples import file_sha256, read_examples

log = logging.getLogger(__name__)

METHODS = ("full", "lora")
INFO_FILE = "kbqa-tune.json"
_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; a checkpoint resumes only under the same ones."""

    method: str = "full"
    steps: int = 50
    batch_size: int = 8  # examples per optimizer step (micro-batches of `micro_batch`)
    micro_batch: int = 1
    learning_rate: float = 5e-5
    warmup_steps: int = 5
    weight_decay: float = 0.0
    max_length: int = 768  # tokens; longer examples are left out
    lora_rank: int = 16
    lora_alpha: int = 32
    seed: int = 13


def train(
    data: Path,
    name: str,
    models_dir: Path,
    *,
    base: str = TUNE_BASE,
    work_dir: Path | None = None,
    config: TrainConfig | None = None,
    checkpoint_every: int = 10,
    device: str = "auto",
    precision: str = "auto",
    resume: bool = True,
    show_progress: bool = True,
    stop_after: int | None = None,
) -> Path | None:
    """Fine-tune `base` on the examples in `data` and save it as models_dir/NAME; returns it.

    `work_dir` (default: models_dir/../tune/NAME) holds the checkpoint; `resume=False` starts
    over. `stop_after` N steps of this run, it checkpoints and returns None: run again to go on.
    `precision` "auto" trains in bf16 autocast where the hardware has bf16, "fp32" / "bf16"
    force it."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or TrainConfig()
    if config.method not in METHODS:
        raise KbqaError(f"method must be one of {', '.join(METHODS)}")
    if not name or "/" in name or name.startswith("."):
        raise KbqaError(f"not a model name: {name!r} (a folder name under KBQA_HOME/models)")
    work_dir = work_dir or models_dir.parent / "tune" / name
    examples = read_examples(data)
    data_hash = file_sha256(data)
    location = resolve_model(base, models_dir)
    run_device = torch_device(device)
    # Mixed precision where the hardware multiplies bf16 (a GPU, or a CPU with AMX / AVX-512
    # BF16): the weights and the optimizer stay fp32, the matrix products run in bf16.
    autocast = precision_dtype(precision, run_device) == "bfloat16"
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise ModelError(f"base model {base!r} cannot be loaded: {exc}") from exc
    sequences, skipped = encode(tokenizer, examples, config.max_length)
    if not sequences:
        raise KbqaError(f"no example of {data} fits in {config.max_length} tokens")

    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_rank,
                lora_alpha=config.lora_alpha,
                lora_dropout=0.0,
                target_modules=_LORA_TARGETS,
                task_type="CAUSAL_LM",
            ),
        )
    model.to(run_device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))

    identity = {"data_sha256": data_hash, "base": base, "config": asdict(config)}
    checkpoint = work_dir / "checkpoint.pt"
    state: dict[str, Any] = {"step": 0, "losses": [], "seconds": 0.0}
    if resume and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=run_device, weights_only=False)
        if saved["identity"] != identity:
            raise KbqaError(
                f"{checkpoint} is from another run (data or settings differ): "
                "start over with resume off, or delete it"
            )
        trainable = dict(model.named_parameters())
        with torch.no_grad():
            for key, value in saved["weights"].items():
                trainable[key].copy_(value)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        log.info("resuming %s from step %d", name, state["step"])

    order = _order(len(sequences), config)
    bar = tqdm(
        total=config.steps,
        initial=state["step"],
        desc=f"tune {name}",
        unit="step",
        disable=not show_progress,
    )
    started = time.perf_counter() - state["seconds"]
    first_step = state["step"]
    while state["step"] < config.steps:
        step = state["step"]
        picks = order[step * config.batch_size : (step + 1) * config.batch_size]
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for start in range(0, len(picks), config.micro_batch):
            batch = _collate([sequences[i] for i in picks[start : start + config.micro_batch]])
            batch = {key: value.to(run_device) for key, value in batch.items()}
            with torch.autocast(run_device.split(":")[0], torch.bfloat16, enabled=autocast):
                loss = _reply_loss(model, batch)
            share = len(batch["input_ids"]) / len(picks)
            (loss * share).backward()
            total += loss.item() * share
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        state["step"] += 1
        state["losses"].append(round(total, 4))
        state["seconds"] = time.perf_counter() - started
        bar.update(1)
        bar.set_postfix(loss=f"{_recent(state['losses']):.3f}")
        unfinished = state["step"] < config.steps
        stopping = (
            unfinished and stop_after is not None and state["step"] - first_step >= stop_after
        )
        if unfinished and (state["step"] % checkpoint_every == 0 or stopping):
            _save_checkpoint(checkpoint, model, optimizer, scheduler, state, identity)
        if stopping:
            bar.close()
            return None
    bar.close()

    if config.method == "lora":
        model = model.merge_and_unload()
    target = models_dir / name
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    info = {
        "name": name,
        "base": base,
        "base_location": location,
        "data": str(data),
        "data_sha256": data_hash,
        "examples": len(examples),
        "examples_used": len(sequences),
        "examples_too_long": skipped,
        "counts": dict(Counter(e["source"] for e in examples)),
        "config": asdict(config),
        "device": run_device,
        "precision": "bf16 autocast" if autocast else "fp32",
        "steps": state["step"],
        "examples_seen": state["step"] * config.batch_size,
        "epochs": round(state["step"] * config.batch_size / len(sequences), 3),
        "final_loss": round(_recent(state["losses"]), 4),
        "first_loss": state["losses"][0] if state["losses"] else None,
        "losses": state["losses"],
        "train_seconds": round(state["seconds"], 1),
        "seconds_per_step": round(state["seconds"] / max(state["step"], 1), 2),
    }
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    (work_dir / INFO_FILE).parent.mkdir(parents=True, exist_ok=True)
    (work_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    checkpoint.unlink(missing_ok=True)
    return target


def encode(tokenizer, examples: list[dict[str, Any]], max_length: int) -> tuple[list, int]:
    """(input ids, labels) per example, the prompt's labels masked with -100; and how many
    examples were longer than max_length and left out."""
    out, skipped = [], 0
    for example in examples:
        messages = example["messages"]
        prompt = _ids(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
        reply = {"role": "assistant", "content": example["reply"]}
        ids = _ids(tokenizer.apply_chat_template([*messages, reply]))
        if ids[: len(prompt)] != prompt:
            # A template that renders the last turn differently: reply tokens and end of text.
            answer = tokenizer(example["reply"], add_special_tokens=False)["input_ids"]
            ids = prompt + list(answer) + [tokenizer.eos_token_id]
        if len(ids) > max_length:
            skipped += 1
            continue
        out.append((ids, [-100] * len(prompt) + ids[len(prompt) :]))
    return out, skipped


def _ids(encoded) -> list[int]:
    # transformers returns a list, or a BatchEncoding when it defaults to return_dict.
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def _collate(items: list[tuple[list[int], list[int]]]):
    """Left-padded, so every reply ends at the last position (see `_reply_loss`)."""
    import torch

    width = max(len(ids) for ids, _ in items)
    input_ids = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, (ids, target) in enumerate(items):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        labels[row, width - len(ids) :] = torch.tensor(target)
        mask[row, width - len(ids) :] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": mask,
        "positions": positions,
    }


def _reply_loss(model, batch):
    """Mean cross-entropy over the reply tokens. Logits are computed only for the positions
    that predict a reply token: the vocabulary projection over a ~500-token prompt would
    otherwise cost about a fifth of each step for tokens that carry no loss."""
    import torch

    labels = batch["labels"]
    targets = (labels != -100).any(0).nonzero()
    keep = labels.shape[1] - int(targets[0]) + 1 if len(targets) else 2
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["positions"],
        logits_to_keep=keep,
    ).logits
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().flatten(0, 1), labels[:, -keep + 1 :].flatten(), ignore_index=-100
    )


def _order(count: int, config: TrainConfig) -> list[int]:
    """The example indices for every step, epoch after epoch, each epoch shuffled by the seed."""
    needed = config.steps * config.batch_size
    order: list[int] = []
    epoch = 0
    while len(order) < needed:
        indices = list(range(count))
        random.Random(config.seed * 1000 + epoch).shuffle(indices)
        order += indices
        epoch += 1
    return order


def _schedule(config: TrainConfig):
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _recent(losses: list[float], window: int = 20) -> float:
    tail = losses[-window:]
    return sum(tail) / len(tail) if tail else float("nan")


def _save_checkpoint(path: Path, model, optimizer, scheduler, state: dict, identity: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "identity": identity,
            "weights": weights,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "state": state,
        },
        tmp,
    )
    # Atomic: a crash while saving leaves the previous checkpoint intact.
    tmp.replace(path)
