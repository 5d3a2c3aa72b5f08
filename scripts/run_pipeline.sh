#!/usr/bin/env bash
# The main job on the bundled MovieLens data with embedded defaults: the SID refresh, a short replay of the
# daily loop (one pipeline run per span), then the pushed model served over gRPC (serving/server.py, TF Serving's API) and one query answered.
# Extra arguments go to pipeline/local_runner.py (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
output_root=outputs
data_root=data/ml-latest-small
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    -h|--help) exec .venv/bin/python -m pipeline.local_runner "$@" ;;
    --output_root) output_root="${args[$((i + 1))]}" ;;
    --output_root=*) output_root="${args[$i]#*=}" ;;
    --data_root) data_root="${args[$((i + 1))]}" ;;
    --data_root=*) data_root="${args[$i]#*=}" ;;
  esac
done
.venv/bin/python -m pipeline.local_runner "$@"
exec .venv/bin/python -m serving.demo --model_base_path "$output_root/serving/sid_ranking" --data_root "$data_root"
