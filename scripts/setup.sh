#!/bin/sh
# Create .venv and install levers with its dev tools. Needs only Python >= 3.11 and git.
# The CPU build of torch goes in first (pip takes torch==2.13.0 from the local wheel store
# where there is one), so that no dependency pulls a multi-GB CUDA build afterwards.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${LEVERS_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
fi
"$VENV/bin/python" -m pip install --quiet -e '.[dev,onnx]'
echo "levers installed in $VENV: $("$VENV/bin/levers" --version)"
