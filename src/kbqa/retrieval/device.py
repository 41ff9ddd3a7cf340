"""Where models run: a CUDA GPU when one is visible (and allowed), else the CPU; and the
fastest precision there."""

from __future__ import annotations

import importlib.util
import os
from functools import cache

from kbqa.errors import ConfigError, MissingDependencyError

# What a GPU's driver leaves on the machine (NVIDIA; AMD's ROCm, which torch calls cuda too;
# WSL's GPU bridge). Without any, torch cannot see a GPU, and is not imported to say so.
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


@cache
def torch_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    if not any(os.path.exists(path) for path in GPU_DRIVER_FILES):
        return "cpu"  # importing torch takes seconds of a cold `kbqa ask`
    try:
        import torch
    except ImportError:
        return "cpu"  # the lean install: the ONNX embedder and llama.cpp, no torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def require_torch(module: str = "torch") -> None:
    """A one-line error naming the extra when a torch backend is chosen without the torch
    stack (the default install leaves it out: the ONNX embedder and llama.cpp need none)."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(module.replace("_", "-"), "torch")


@cache
def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices in hardware (AMX or AVX-512 BF16). Elsewhere
    torch emulates bf16 and is far slower than fp32 (0.3 against 77 GFLOP/s on an AVX2 EPYC)."""
    try:
        import torch
    except ImportError:
        return False

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
