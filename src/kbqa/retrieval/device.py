"""Where models run: a CUDA GPU when one is visible (and allowed), else the CPU; and the
fastest precision there."""

from __future__ import annotations

from functools import cache

from kbqa.errors import ConfigError


@cache
def torch_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@cache
def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices in hardware (AMX or AVX-512 BF16). Elsewhere
    torch emulates bf16 and is far slower than fp32 (0.3 against 77 GFLOP/s on an AVX2 EPYC)."""
    import torch

    cpu = torch.cpu
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def fast_dtype(device: str) -> str:
    """ "bfloat16" where it is fast (a GPU that has it, a CPU with bf16 units), else "float32"."""
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"


PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}


def precision_dtype(precision: str, device: str) -> str:
    """The torch dtype name a `generator_precision` setting means on `device`: "auto" is
    `fast_dtype`, "fp32" / "bf16" force one."""
    if precision == "auto":
        return fast_dtype(device)
    if precision not in PRECISIONS:
        raise ConfigError("setting 'generator_precision' must be one of auto, fp32, bf16")
    return PRECISIONS[precision]
