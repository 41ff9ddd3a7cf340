"""OpenAI's `usage` counted in tokens: with the generator's tokenizer, or the embedder's when
the answer was extractive (or the generator has none a client could load, llama.cpp's). The
prompt is the messages the client sent; the passages kbqa shows the model are not counted (which
it shows depends on how the answer was made, and an extractive one shows none)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_PIECES = re.compile(r"\w+|[^\w\s]")
_untruncated: dict[int, Any] = {}


def tokenizer_of(core: Any, extractive: bool) -> Any | None:
    """The tokenizer the answer was made with, or None (the test fakes have none)."""
    if not extractive:
        tokenizer = getattr(core.generator, "tokenizer", None)
        if tokenizer is not None:
            return tokenizer
    embedder = core.embedder
    model = getattr(embedder, "model", None)  # sentence-transformers keeps it on the model
    return getattr(embedder, "tokenizer", None) or getattr(model, "tokenizer", None)


def count_tokens(tokenizer: Any | None, text: str) -> int:
    """Tokens in `text` (special tokens left out); without a tokenizer, words and punctuation."""
    if tokenizer is None:
        return len(_PIECES.findall(text))
    if hasattr(tokenizer, "encode_batch"):  # a `tokenizers.Tokenizer`
        return len(_whole(tokenizer).encode(text, add_special_tokens=False).ids)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])  # a transformers one


def _whole(tokenizer: Any) -> Any:
    # The embedder's copy cuts text at the model's length; a copy of our own counts it all.
    copy = _untruncated.get(id(tokenizer))
    if copy is None:
        from tokenizers import Tokenizer

        copy = Tokenizer.from_str(tokenizer.to_str())
        copy.no_truncation()
        copy.no_padding()
        _untruncated[id(tokenizer)] = copy
    return copy


def usage(tokenizer: Any | None, prompts: Sequence[str], completion: str) -> dict[str, int]:
    """OpenAI's `usage`: the tokens of every message sent (`prompts`) and of the reply."""
    asked = sum(count_tokens(tokenizer, prompt) for prompt in prompts)
    said = count_tokens(tokenizer, completion)
    return {"prompt_tokens": asked, "completion_tokens": said, "total_tokens": asked + said}
