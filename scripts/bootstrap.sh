#!/usr/bin/env bash
# Installs uv if needed and the locked environment (.venv) from uv.lock; nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  echo "Installing uv ..." >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
# Bytecode compiled once at install: without it every process compiles TensorFlow's modules again (these
# machines set PYTHONDONTWRITEBYTECODE), 11 s instead of 3.6 s to import it, paid by every pipeline run and
# every model server start.
"$PYTHON" -m uv sync --frozen --compile-bytecode --python "$("$PYTHON" -c 'import sys; print(sys.executable)')" --quiet
