"""Where models run: a CUDA GPU when one is visible (and allowed), else the CPU."""

from __future__ import annotations

from functools import cache


@cache
def torch_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
