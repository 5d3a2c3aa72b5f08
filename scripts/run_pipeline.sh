#!/usr/bin/env bash
# The main job: the whole pipeline on the bundled MovieLens data with embedded defaults.
# Extra arguments go to pipeline/local_runner.py (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
exec .venv/bin/python -m pipeline.local_runner "$@"
