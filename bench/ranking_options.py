"""Ranker options screened as the settings rounds screen them (docs/ranking.md): the pipeline's arm with each
set of RankingConfig options, per seed, trained and scored span by span over the loop's first spans
(pipeline.experiments.run_arm), beside the counting baselines on the same spans.

  .venv/bin/python bench/ranking_options.py --output_root OUT --max_spans 12 \
      --options '{"pooled": {"history_attention": false}, "attention": {}}' [--seeds 3] [--output FILE]
  (after the loop has run those spans: the main command, then python -m pipeline.replay)

Prints AUC overall and on cold-start and long-tail items, mean +/- std over seeds, per option set; appends
each run to --output (JSON lines; a re-run skips the runs already there).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from models.ranking.config import RankingConfig
from pipeline import configs, experiments
from pipeline import runs as pipeline_runs

SLICES = ("overall", "cold_start", "long_tail")


def _summary(name: str, values) -> str:
  parts = []
  for key in SLICES:
    found = [v[key] for v in values if v[key] is not None]
    parts.append(f"{key} {np.mean(found):.4f} ± {np.std(found):.4f}" if found else f"{key} -")
  return f"{name:<24} " + ", ".join(parts) + f" ({len(values)} seeds)"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output_root", default=configs.OUTPUT_ROOT)
  parser.add_argument("--max_spans", type=int, default=12)
  parser.add_argument("--options", required=True, help="JSON: name -> RankingConfig settings over the loop's")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--output", default="ranking_options.jsonl")
  args = parser.parse_args(argv)
  options = json.loads(args.options)
  loop_ranking = pipeline_runs.load_config(args.output_root).ranking
  inputs = experiments.load_inputs(args.output_root, args.max_spans)
  print(f"{len(inputs.splits) - 1} evaluated spans", flush=True)
  done = []
  if os.path.exists(args.output):
    with open(args.output) as f:
      done = [json.loads(line) for line in f if line.strip()]
  for name, settings in options.items():
    for seed in range(args.seeds):
      if any(r["option"] == name and r["seed"] == seed and r["spans"] == len(inputs.splits) - 1 for r in done):
        continue
      config = RankingConfig.from_dict({**loop_ranking, **settings, "seed": seed})
      run = experiments.run_arm(config, inputs, inputs.catalogs["v1"], inputs.spm_models.get(config.table_rows))
      row = {"option": name, "arm": config.name, "seed": seed, "spans": len(inputs.splits) - 1,
             "seconds": round(run["seconds"], 1), **{k: run["slices"][k]["auc"] for k in SLICES}}
      done.append(row)
      with open(args.output, "a") as f:
        f.write(json.dumps(row) + "\n")
      print(json.dumps(row), flush=True)
  spans = len(inputs.splits) - 1
  for name in options:
    print(_summary(name, [r for r in done if r["option"] == name and r["spans"] == spans]))
  # The regression and the trees on the counting features of each option set (decayed counters or not, the
  # history like-rate over its window).
  option_configs = [RankingConfig.from_dict({**loop_ranking, **s}) for s in options.values()]
  for decayed, window in sorted({(c.uses_decayed_counters, c.counter_window) for c in option_configs}):
    for baseline in experiments.run_baselines(inputs, decayed, window):
      name = baseline["arm"] + (f" window {window}" if window else "")
      print(f"{name:<24} " + ", ".join(f"{k} {baseline['slices'][k]['auc']:.4f}" for k in SLICES))
  return 0


if __name__ == "__main__":
  sys.exit(main())
