"""What the experiments ask of the packaged llama.cpp model beyond a greedy reply: a seeded
sample, the first token's probabilities, and each written token's log-probability.

kbqa's own generator (`kbqa.assistant.generator.LlamaCppGenerator`) only writes greedy replies;
these send the same request it sends (its `_request` fields) with the extra fields llama.cpp's
chat endpoint takes, to its in-process server."""

from __future__ import annotations

import math

from kbqa.assistant.generator import STOP, LlamaCppGenerator
from kbqa.errors import ModelError

Messages = list[dict[str, str]]


def _choice(generator: LlamaCppGenerator, messages: Messages, max_tokens: int, **extra) -> dict:
    request = {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stop": STOP,
        "stream": False,
    } | extra
    reply = generator._server.handle_chat_completions(request)
    if "error" in reply:
        raise ModelError(f"{generator.name}: {reply['error'].get('message', reply['error'])}")
    return reply["choices"][0]


def sample(
    generator: LlamaCppGenerator,
    messages: Messages,
    seed: int,
    temperature: float = 0.8,
    max_new_tokens: int = 96,
) -> str:
    """One sampled reply instead of the greedy one, the same for the same seed: what a
    self-consistency check compares the answer with (consistency.py)."""
    choice = _choice(generator, messages, max_new_tokens, temperature=temperature, seed=seed)
    return (choice["message"].get("content") or "").strip()


def next_token_probabilities(
    generator: LlamaCppGenerator, messages: Messages, top: int = 10
) -> dict[str, float]:
    """The `top` likeliest first tokens of the reply and their probabilities (a yes/no judge
    reads P("Yes") against P("No"): judge.py)."""
    choice = _choice(generator, messages, 1, logprobs=True, top_logprobs=top)
    out: dict[str, float] = {}
    for t in choice["logprobs"]["content"][0]["top_logprobs"]:
        out[t["token"]] = out.get(t["token"], 0.0) + math.exp(t["logprob"])
    return out


def generate_scored(
    generator: LlamaCppGenerator, messages: Messages, max_new_tokens: int = 96
) -> tuple[str, list[tuple[str, float]]]:
    """The greedy reply with each written token and its log-probability: the model's own
    confidence, read by likelihood.py."""
    choice = _choice(generator, messages, max_new_tokens, logprobs=True)
    written = (choice.get("logprobs") or {}).get("content") or []
    scored = [(t["token"], t["logprob"]) for t in written]
    return (choice["message"].get("content") or "").strip(), scored
