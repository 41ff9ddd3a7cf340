#!/usr/bin/env bash
# Builds llama.cpp (the xllamacpp wheel kbqa runs) for this machine's own CPU and installs it
# into the virtual environment in place of the generic wheel. kbqa picks it up with no setting:
# it imports the same module. docs/native-llama.md has what it gains (2.3x faster prompt reading
# on a CPU with AMX) and what it costs (about 6 minutes on 2 cores; cmake and a C++ compiler).
# Usage: [VENV=DIR] scripts/native-llama.sh          build and install
#        [VENV=DIR] scripts/native-llama.sh generic  put the generic wheel back
# The build is for this CPU only: a virtual environment copied to another machine needs
# `generic` (or a build there).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check -q"
[ -x "$PY" ] || { echo "native-llama: no virtual environment at $VENV (run make setup first)" >&2; exit 2; }
VERSION=$("$PY" -c 'from importlib.metadata import version; print(version("xllamacpp"))' 2>/dev/null) \
    || { echo "native-llama: xllamacpp is not installed in $VENV (make setup installs it)" >&2; exit 2; }
VERSION="${VERSION%%+*}"

if [ "${1:-}" = generic ]; then
    $PIP install --force-reinstall --no-deps "xllamacpp==$VERSION"
    echo "native-llama: the generic xllamacpp $VERSION wheel is back in $VENV"
    exit 0
fi

for tool in cmake g++; do
    command -v "$tool" >/dev/null || { echo "native-llama: needs $tool (Debian: apt-get install cmake g++)" >&2; exit 2; }
done
if ! grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
    echo "native-llama: note: this CPU has no AMX; without it a native build read prompts only" \
        "1.16-1.46x faster here (docs/native-llama.md)" >&2
fi
started=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The sdist's build requirements, so that pip can read its metadata without a build sandbox.
$PIP install "setuptools>=61" "cython>=3.1" wheel "versioneer[toml]"
$PIP download --no-deps --no-binary xllamacpp --no-build-isolation -d "$work" "xllamacpp==$VERSION"
tar -xzf "$work"/xllamacpp-"$VERSION".tar.gz -C "$work"
src="$work/xllamacpp-$VERSION"
"$PY" scripts/amx_fix.py "$src/thirdparty/llama.cpp"
# GGML_NATIVE: -march=native (AVX-512, AMX where the CPU has them). llguidance and BoringSSL
# would be fetched from GitHub: kbqa's pointer grammar is GBNF, and the server it runs is
# in-process, so neither is needed.
echo "native-llama: building xllamacpp $VERSION for this CPU (about 6 minutes on 2 cores)"
CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_LLGUIDANCE=OFF -DLLAMA_BUILD_BORINGSSL=OFF -DLLAMA_OPENSSL=OFF" \
    NPROC="$(nproc)" $PIP wheel --no-deps --no-build-isolation -w "$work/dist" "$src"
$PIP install --force-reinstall --no-deps "$work"/dist/xllamacpp-*.whl
"$PY" -c 'import xllamacpp; print("native-llama: installed;", xllamacpp.get_system_info().strip())'
echo "native-llama: done in $(( ($(date +%s) - started) / 60 )) minutes; '$0 generic' undoes it"
