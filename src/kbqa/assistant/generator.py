"""Generators: `generate(messages) -> str` and `stream(messages) -> Iterator[str]` for a
chat-formatted prompt, behind one protocol. Backends, chosen by `generator_backend`:

- "llama.cpp" (xllamacpp): runs GGUF files with 4-bit weights; the default for the packaged
  models and any `.gguf` path, since on a CPU decoding is bound by reading the weights.
- "transformers": Hugging Face ids, local folders and `kbqa tune`'s models; bf16 where the
  CPU has bf16 matrix units (AMX / AVX-512 BF16) or on a GPU, fp32 elsewhere.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import queue
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from kbqa.assistant import pointer
from kbqa.assistant.models import PACKAGED, packaged_gguf
from kbqa.errors import MissingDependencyError, ModelError
from kbqa.retrieval.device import precision_dtype, require_torch, torch_device

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
# The answer is a few sentences; a blank line means the model has moved on to something else.
STOP = ["\n\n"]
DEFAULT_CACHE = Path("~/.cache/kbqa/models")


class Generator(Protocol):
    name: str

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str: ...


# A pointer reply's line completer (pointer.Filler): the reply so far, its last line just
# ended -> (the words to add, the grammar to go on under or None), or None.
Fill = Callable[[str], "tuple[str, str | None] | None"]


def stream(generator: Generator, messages: Messages, max_new_tokens: int = 96) -> Iterator[str]:
    """The reply in pieces as it is written; a generator without `stream` gives it whole."""
    streaming = getattr(generator, "stream", None)
    if streaming is None:
        yield generator.generate(messages, max_new_tokens)
        return
    yield from streaming(messages, max_new_tokens)


def point(
    generator: Generator,
    messages: Messages,
    grammar: str,
    max_new_tokens: int = 64,
    fill: Fill | None = None,
) -> Iterator[tuple[str, list[dict]]]:
    """A pointer reply as (text, tokens with log-probabilities) pieces. A backend without
    grammars writes the format freely (no probabilities); the pointer parser keeps what holds.
    `fill` (pointer.Filler) completes the lines a word limit cut, where the backend can."""
    pointing = getattr(generator, "point", None)
    if pointing is None:
        for piece in stream(generator, messages, max_new_tokens):
            yield piece, []
        return
    if fill is None or not takes_fill(pointing):
        yield from pointing(messages, grammar, max_new_tokens)
    else:
        yield from pointing(messages, grammar, max_new_tokens, fill=fill)


def takes_fill(pointing: Callable) -> bool:
    """Whether a `point` method completes cut lines (`fill`): llama.cpp's does; a backend
    without grammars, or a fake, writes its lines whole."""
    try:
        return "fill" in inspect.signature(pointing).parameters
    except (TypeError, ValueError):
        return False


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


def resolve_model(name: str, models_dir: Path, cache: Path = DEFAULT_CACHE) -> str:
    """A location transformers can load for a generator setting: a packaged model (converted
    once from its GGUF file), KBQA_HOME/models/NAME, a local folder, or a Hugging Face id."""
    if name in PACKAGED:
        return str(_converted(packaged_gguf(name, cache), models_dir / name))
    if (models_dir / name / "config.json").is_file():
        return str(models_dir / name)
    return name


def _converted(gguf: Path, target: Path) -> Path:
    """A safetensors copy of a GGUF model: transformers dequantizes GGUF on every load (~30 s
    for the 135M model), so it is done once."""
    if (target / "config.json").is_file():
        return target
    require_torch("transformers")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a cached safetensors model (once)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
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


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class TransformersGenerator:
    """Greedy decoding with a chat template; stops at a blank line."""

    def __init__(
        self,
        model: str,
        models_dir: Path,
        device: str = "auto",
        cache: Path = DEFAULT_CACHE,
        precision: str = "auto",
    ):
        require_torch("transformers")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = model
        location = resolve_model(model, models_dir, cache)
        self.device = torch_device(device)
        self.dtype = precision_dtype(precision, self.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location)
            self.model = AutoModelForCausalLM.from_pretrained(location, dtype=self.dtype)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"generator_model {model!r} cannot be loaded: {_first_line(exc)}"
            ) from exc
        self.model.to(self.device).eval()
        log.info("generator %s on %s in %s", model, self.device, self.dtype)

    def _inputs(self, prompts: list[Messages]):
        texts = [
            self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
            for m in prompts
        ]
        # Left padding keeps every prompt's last token at the end, where generation starts.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        return self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)

    def _options(self, max_new_tokens: int) -> dict:
        return dict(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=1.1,
            stop_strings=STOP,
            tokenizer=self.tokenizer,
            pad_token_id=self.tokenizer.pad_token_id,
        )

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        return self.generate_batch([messages], max_new_tokens)[0]

    def generate_batch(self, prompts: list[Messages], max_new_tokens: int = 96) -> list[str]:
        """Greedy replies to several prompts at once. Decoding a small model is bound by
        reading its weights, so a batch of 8 costs little more than one prompt on a CPU."""
        import torch

        inputs = self._inputs(prompts)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self._options(max_new_tokens))
        new = output[:, inputs["input_ids"].shape[1] :]
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]

    def stream(self, messages: Messages, max_new_tokens: int = 96) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._inputs([messages])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def run() -> None:
            with torch.inference_mode():
                self.model.generate(**inputs, **self._options(max_new_tokens), streamer=streamer)

        threading.Thread(target=run, daemon=True, name="kbqa-generate").start()
        yield from streamer


class LlamaCppGenerator:
    """A GGUF model run by llama.cpp (xllamacpp's in-process server), greedy. With `slots` > 1
    the server writes that many replies at once (continuous batching over one unified KV
    cache): on a CPU writing is bound by reading the weights, so replies written together cost
    little more than one. Requests may come from several threads; the server queues those
    beyond its slots (kbqa's own queue, assistant/queue.py, decides what reaches it)."""

    # Safe to call from several threads at once: models.py adds no lock around it.
    concurrent = True

    def __init__(
        self,
        path: Path,
        name: str,
        threads: int = 0,
        n_ctx: int = 4096,
        slots: int = 1,
        draft: bool = False,
    ):
        try:
            import xllamacpp
        except ImportError:
            raise MissingDependencyError("xllamacpp", "llama") from None
        if not Path(path).is_file():
            raise ModelError(f"generator_model {name!r}: no GGUF file at {path}")
        self.name, self.path, self.slots = name, Path(path), max(1, slots)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = self.slots
        # One cache shared by the slots, each reply up to n_ctx tokens long.
        params.kv_unified = True
        params.n_ctx = n_ctx * self.slots
        params.cont_batching = True
        # llama.cpp's threads spin while they wait, so more threads than cores only slow it.
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads or (
            os.cpu_count() or 1
        )
        params.warmup = False
        params.verbosity = -1
        # Prompt lookup: words the reply copies from the prompt are drafted from it and checked
        # in one pass, instead of written one by one (a pointer's copy is all such words).
        self.draft = draft
        if draft:
            kind = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE
            params.speculative.types = [kind]
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # a bad or truncated file
            message = f"generator_model {name!r} cannot be loaded: {_first_line(exc)}"
            raise ModelError(message) from exc

    def _request(self, messages: Messages, max_new_tokens: int, streaming: bool) -> dict:
        return {
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stop": STOP,
            "stream": streaming,
        }

    def _choice(self, request: dict) -> dict:
        """The reply's first choice to a whole (not streamed) request; an error is raised."""
        reply = self._server.handle_chat_completions(request)
        if "error" in reply:
            raise ModelError(f"{self.name}: {reply['error'].get('message', reply['error'])}")
        return reply["choices"][0]

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        choice = self._choice(self._request(messages, max_new_tokens, False))
        return (choice["message"].get("content") or "").strip()

    def stream(self, messages: Messages, max_new_tokens: int = 96) -> Iterator[str]:
        for text, _ in self._stream(self._request(messages, max_new_tokens, True)):
            yield text

    def point(
        self,
        messages: Messages,
        grammar: str,
        max_new_tokens: int = 64,
        fill: Fill | None = None,
    ) -> Iterator[tuple[str, list[dict]]]:
        """A reply held to `grammar` (GBNF), streamed as (text, the pieces'
        tokens with their top log-probabilities) — what the pointer answer path reads.
        `fill`: see `_filled` (not with drafting, which copies quickly already)."""
        request = self._request(messages, max_new_tokens, True) | {
            "grammar": grammar,
            "logprobs": True,
            "top_logprobs": 10,
            "stop": [],  # the grammar ends the reply; a blank line cannot occur in it
        }
        if not self.draft:
            if fill is None:
                yield from self._stream(request)
            else:
                yield from self._filled(messages, request, fill)
            return
        # llama.cpp reports no probabilities for drafted tokens (ggml-org/llama.cpp#27972),
        # and the pointer's checks read the probability of each unit number: the reply is
        # held whole, and each drafted digit of a number is scored again on its own.
        reply, tokens = "", []
        for text, written in self._stream(request):
            tokens += written or [{"token": text, "logprob": 0.0, "drafted": True}]
            reply += text
        yield reply, self._numbers_scored(messages, tokens)

    def _filled(
        self, messages: Messages, request: dict, fill: Fill
    ) -> Iterator[tuple[str, list[dict]]]:
        """The reply, where each line that `fill` says a word limit cut is completed with its
        unit's remaining words (given as one token with no probability, `"filled": True`)
        and the model goes on from there: the reply so far is the start of the assistant's
        message (the server's cache holds the prompt, so only the new words are read)."""
        written, budget = "", request["max_tokens"]
        while True:
            cut, pieces = None, self._stream(request)
            try:
                for text, tokens in pieces:
                    head, newline, _ = text.partition("\n")
                    if newline and (cut := fill(written + head)) is not None:
                        if head:
                            written += head
                            yield head, tokens
                        break
                    written += text
                    budget -= max(len(tokens), 1)
                    yield text, tokens
                else:
                    cut = fill(written)
            finally:
                pieces.close()  # a line was cut: this request stops writing
            if cut is None:
                return
            rest, grammar = cut
            written += rest
            yield rest, [{"token": rest, "logprob": 0.0, "top_logprobs": [], "filled": True}]
            if grammar is None or budget <= 0:
                return
            request = request | {
                "messages": [*messages, {"role": "assistant", "content": written}],
                "grammar": grammar,
                "max_tokens": budget,
            }

    def _numbers_scored(self, messages: Messages, tokens: list[dict]) -> list[dict]:
        """`tokens` with each drafted digit after "[" replaced by the same token scored alone:
        the reply up to it is given as the start of the assistant's message, and one token is
        asked for (the server's cache holds that prefix, so only the new tokens are read; a
        single token is never drafted)."""
        out = list(tokens)
        again = [
            i for digits in pointer.numbers(tokens) for i in digits if tokens[i].get("drafted")
        ]
        for i in again:
            prefix = "".join(t["token"] for t in tokens[:i])
            out[i] = self._scored(messages, prefix, tokens[i]["token"])
        drafted = sum(bool(t.get("drafted")) for t in tokens)
        log.debug(
            "%d of %d tokens drafted, %d digits scored again", drafted, len(tokens), len(again)
        )
        return out

    def _scored(self, messages: Messages, prefix: str, text: str) -> dict:
        request = {
            "messages": [*messages, {"role": "assistant", "content": prefix}],
            "max_tokens": 1,
            "temperature": 0,
            "grammar": f"root ::= {json.dumps(text)}",
            "logprobs": True,
            "top_logprobs": 10,
        }
        content = (self._choice(request).get("logprobs") or {}).get("content") or []
        if not content or content[0]["token"] != text:
            raise ModelError(f"{self.name}: scoring {text!r} after {prefix[-40:]!r} failed")
        return content[0]

    def _stream(self, request: dict) -> Iterator[tuple[str, list[dict]]]:
        pieces: queue.Queue = queue.Queue()
        done, stop = object(), threading.Event()

        def take(chunk: dict) -> bool:
            pieces.put(chunk)
            return stop.is_set()  # True ends the request: its slot is free for the next one

        def run() -> None:
            try:
                self._server.handle_chat_completions(request, take)
            except Exception as exc:  # handed to the reader, which raises it
                pieces.put(exc)
            finally:
                pieces.put(done)

        threading.Thread(target=run, daemon=True, name="kbqa-llama").start()
        try:
            yield from self._read(pieces, done)
        finally:
            # The reader stopped early (the asker went away): stop writing for it.
            stop.set()

    def _read(self, pieces: queue.Queue, done: object) -> Iterator[tuple[str, list[dict]]]:
        while (chunk := pieces.get()) is not done:
            if isinstance(chunk, Exception):
                raise ModelError(f"{self.name}: {_first_line(chunk)}") from chunk
            if "error" in chunk:
                # A grammar llama.cpp cannot parse is the answerer's bug: say so plainly.
                error = chunk["error"]
                raise ModelError(f"{self.name}: {error.get('message', error)}")
            for choice in chunk.get("choices", []):
                text = (choice.get("delta") or {}).get("content")
                tokens = (choice.get("logprobs") or {}).get("content") or []
                if text or tokens:
                    yield text or "", tokens


class EchoGenerator:
    """A deterministic fake for tests: answers with the first sentence of passage [1] that is
    not a question (a Slack thread opens with one), cited."""

    name = "echo"

    def point(
        self, messages: Messages, grammar: str, max_new_tokens: int = 64
    ) -> Iterator[tuple[str, list[dict]]]:
        """Points at the first unit, copying its first four words."""
        match = re.search(r"^\[(\d+)\] (.+)$", messages[-1]["content"], re.M)
        yield (f"[{match.group(1)}] {' '.join(match.group(2).split()[:4])}" if match else "[0]"), []

    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        prompt = messages[-1]["content"]
        match = re.search(r"^Source \[1\]: .*?\n<passage>\n(.+?)\n</passage>", prompt, re.S | re.M)
        if not match:
            return "I don't know."
        body = " ".join(match.group(1).split())
        sentences = re.split(r"(?<=[.!?])\s", body)
        first = next((s for s in sentences if not s.endswith("?")), sentences[0])
        return f"{first} [1]"


BACKENDS = ("auto", "llama.cpp", "transformers")


def split_backend(label: str) -> tuple[str, str | None]:
    """ "NAME@llama.cpp" -> ("NAME", "llama.cpp"): the runtime a `--model` names, if it names
    one (a name may hold an "@" of its own, so only a known backend after the last one counts)."""
    name, _, backend = label.rpartition("@")
    return (name, backend) if name and backend in BACKENDS else (label, None)


def backend_for(model: str, backend: str = "auto") -> str:
    """Which runtime runs a generator setting: "llama.cpp" or "transformers"."""
    if backend != "auto":
        return backend
    if model.endswith(".gguf") or (model in PACKAGED and _has_llama()):
        return "llama.cpp"
    return "transformers"


def _has_llama() -> bool:
    import importlib.util

    return importlib.util.find_spec("xllamacpp") is not None


def llama_cpp_build() -> str:
    """The CPU instructions the installed llama.cpp was built for, as it reports them: "AVX2 …"
    for the generic wheel, "… AVX512 … AMX_INT8" after scripts/native-llama.sh on such a CPU;
    "" when xllamacpp is not installed."""
    if not _has_llama():
        return ""
    import xllamacpp

    found = re.findall(r"(\w+) = 1", xllamacpp.get_system_info())
    return " ".join(name for name in found if name.startswith(_INSTRUCTIONS))


_INSTRUCTIONS = ("SSE", "SSSE", "AVX", "F16C", "FMA", "BMI", "AMX")


def make_generator(
    model: str,
    models_dir: Path,
    device: str = "auto",
    cache: Path = DEFAULT_CACHE,
    backend: str = "auto",
    threads: int = 0,
    precision: str = "auto",
    slots: int = 1,
    draft: bool = False,
) -> Generator:
    """The generator for a settings string, on the backend `backend_for` picks; `precision`
    ("auto", "fp32", "bf16") applies to the transformers backend, `slots` (replies written at
    once) and `draft` (prompt lookup) to llama.cpp."""
    if model == "echo":
        return EchoGenerator()
    if backend_for(model, backend) == "llama.cpp":
        path = packaged_gguf(model, cache) if model in PACKAGED else Path(model).expanduser()
        return LlamaCppGenerator(path, model, threads, slots=slots, draft=draft)
    return TransformersGenerator(model, models_dir, device, cache, precision)


__all__ = [
    "EchoGenerator",
    "Generator",
    "LlamaCppGenerator",
    "TransformersGenerator",
    "make_generator",
    "split_backend",
    "stream",
]
