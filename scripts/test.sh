#!/usr/bin/env bash
# Lint, then the test suite (unit tests beside each piece, and the end-to-end pipeline test on tiny data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Lint first (ruff, configured in pyproject.toml): under a second on the whole tree.
.venv/bin/ruff check --quiet .
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
