"""Two fixes to llama.cpp's AMX kernels (ggml/src/ggml-cpu/amx/mmq.cpp), applied by
scripts/native-llama.sh before it builds: without them the AMX kernels of the version xllamacpp
2026.10.11549 vendors die at their first tile instruction (SIGILL). Each worker thread asks the
kernel for the AMX tile-data permission before its first tile instruction, and the tile
configuration is kept in static storage. Upstream: ggml-org/llama.cpp#26954.

    python scripts/amx_fix.py LLAMA_CPP_SOURCE_DIR
"""

import sys
from pathlib import Path

path = Path(sys.argv[1]) / "ggml/src/ggml-cpu/amx/mmq.cpp"
if not path.is_file():
    raise SystemExit(f"amx_fix: no {path}: is {sys.argv[1]} a llama.cpp source tree?")
text = path.read_text()
old = "    alignas(64) tile_config_t tc = {};\n"
new = (
    "#if defined(__linux__)\n"
    "    syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */);\n"
    "#endif\n"
    "    alignas(64) static thread_local tile_config_t tc = {};\n"
)
if new in text:
    print("already patched")
elif text.count(old) != 1:
    raise SystemExit(f"amx_fix: {path}: the tile configuration is not where this fix expects it")
else:
    path.write_text(text.replace(old, new))
    print("patched", path)
