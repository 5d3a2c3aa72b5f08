"""A SID refresh in the middle of the loop: keep the stale SIDs, or refresh and retrain the ranker from
scratch, or refresh and remap the trained ranker onto the new SIDs (models/ranking/remap.py); and the share
of items whose SID changed, with and without stable codes (the new RQ-VAE started from the loop's).

  .venv/bin/python bench/sid_refresh.py --output_root OUT [--max_spans 12] [--refresh_after 6] [--seeds 3] \
      [--windows 1,3] [--methods lstsq,mean] [--output FILE]
  (after the loop has run those spans: the main command, then python -m pipeline.replay)

The loop's spans are replayed in memory as pipeline/experiments.py replays them. After span R
(--refresh_after) a new RQ-VAE learns from the content of every item the loop had seen by then (from
scratch, and warm-started from the loop's RQ-VAE), every item gets a SID from it (later items too, as the
daily runs encode new items with the frozen model), and a SentencePiece vocabulary is learned from the
impressions through span R. Then, per seed, the arms score spans R+1.. before training on each:
- stale: the loop's ranker on the loop's SIDs, no refresh;
- scratch: a new ranker on the new SIDs, warmed up as the SID refresh warms up (the latest `warmup_examples`
  interactions through span R, `warmup_epochs` passes);
- remap: the stale ranker at span R remapped onto the new SIDs (the SID-cluster counts re-keyed from the
  interactions before the window), then trained one pass over the latest W interactions through span R
  (--windows), with the continuous-training steps' learning rates (or the warm-up's), then the steps' for
  the spans after; pieces the old vocabulary had are copied, or (fit all) fitted too.
Prints AUC overall and on cold-start items over the spans after the refresh, the refresh's training examples
and seconds, and the changed shares; appends every run to --output (JSON lines; a re-run skips those done).
"""

import argparse
import json
import os
import sys
import time
from typing import Dict, List

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
from tfx.utils import path_utils

from components.sid_quality_report import metrics
from formats import artifacts
from formats import interaction_features as fields
from models.ranking import evaluation, remap
from models.ranking import model as ranking
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from models.rqvae import model as rqvae
from models.rqvae import saved_model
from models.sid_adaptation import spm
from pipeline import configs, experiments, summary
from pipeline import runs as pipeline_runs

SLICES = ("overall", "cold_start")
# The remapped ranker's learning rates on its window: a continuous-training step's, or the warm-up's.
LEARNING_RATES = {"step": "", "warmup": " warm-up lr"}


def _per_item(splits: List[Dict[str, tf.Tensor]], ids: np.ndarray) -> tuple:
  """Interactions and liked ones per item of `ids` (sorted) over `splits`."""
  column = lambda name: np.concatenate([split[name].numpy() for split in splits])
  return remap.item_counts(ids, column(fields.ITEM_ID), column(fields.LABEL))


def _concatenated(splits: List[Dict[str, tf.Tensor]]) -> Dict[str, tf.Tensor]:
  return {name: tf.concat([split[name] for split in splits], 0) for name in splits[0]}


def _refreshed_sids(loop_config, loop_model_dir: str, content: np.ndarray, corpus: np.ndarray,
                    warm: bool) -> tuple:
  """Every item's codes from a new RQ-VAE trained on the `corpus` items' content; seconds."""
  model = rqvae.RQVAE(rqvae.RQVAEConfig(**{**loop_config.rqvae, "input_dim": content.shape[1]}))
  if warm:
    saved_model.restore(model, loop_model_dir)
  start = time.perf_counter()
  rqvae.train(model, content[corpus], log=lambda _: None, warm_start=warm)
  return rqvae.encode_all(model, content).astype(np.int64), time.perf_counter() - start


class Runs:
  """The arms' runs in a JSON-lines file, one per (arm, SIDs, seed) of a replay of `spans` spans refreshed after
  span `after`: a re-run skips those done."""

  def __init__(self, path: str, spans: int, after: int):
    self.path, self.spans, self.after, self.done = path, spans, after, []
    if os.path.exists(path):
      with open(path) as f:
        self.done = [json.loads(line) for line in f if line.strip()]

  def finished(self, arm: str, sids: str, seed: int) -> bool:
    return any((r["arm"], r["sids"], r["seed"]) == (arm, sids, seed) for r in self.rows())

  def record(self, row: Dict) -> None:
    row = {**row, "spans": self.spans, "refresh_after": self.after}
    self.done.append(row)
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "per_span"}), flush=True)

  def rows(self) -> List[Dict]:
    """This replay's runs."""
    return [r for r in self.done if r["spans"] == self.spans and r["refresh_after"] == self.after]


def refreshed_sids(loop_config, loop_catalog: Catalog, splits: List[Dict[str, tf.Tensor]], after: int) -> tuple:
  """A refresh after split `after`: (impressions per item through it, the refresh's corpus: every item but
  those first rated later, {"scratch RQ-VAE" / "stable codes": (every item's new codes, the changed shares)})."""
  ids, content = loop_catalog.item_ids, loop_catalog.content
  if (np.diff(ids) <= 0).any():
    raise SystemExit("the catalog's item ids are not sorted")
  impressions = _per_item(splits[:after + 1], ids)[0]
  corpus = (impressions > 0) | (_per_item(splits[after + 1:], ids)[0] == 0)
  outputs = summary.latest_node_outputs(summary.readonly_store(loop_config.metadata_path), loop_config.pipeline_name)
  loop_model = summary.latest_artifact(outputs, artifacts.RQVAEModel, "model", "RQVAETrainer")
  loop_model_dir = path_utils.serving_model_path(loop_model.uri)
  variants = {}
  for name, warm in (("scratch RQ-VAE", False), ("stable codes", True)):
    codes, seconds = _refreshed_sids(loop_config, loop_model_dir, content, corpus, warm)
    changes = metrics.code_changes(ids[corpus], loop_catalog.codes[corpus], ids[corpus], codes[corpus])
    print(f"{name}: RQ-VAE {seconds:.0f} s on {corpus.sum()} items; code changed per level "
          f"{', '.join(f'{s:.3f}' for s in changes['changed_share'])}, SID changed {changes['sid_changed_share']:.3f}",
          flush=True)
    variants[name] = (codes, changes)
  return impressions, corpus, variants


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output_root", default=configs.OUTPUT_ROOT)
  parser.add_argument("--max_spans", type=int, default=12)
  parser.add_argument("--refresh_after", type=int, default=6)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--windows", default="10000,50000", help="latest interactions the remapped ranker trains on")
  parser.add_argument("--methods", default="lstsq", help=f"remap methods: {', '.join(remap.METHODS)}")
  parser.add_argument("--carry", default="copy,fit", help="pieces the old vocabulary had: copy (fixed), fit (too)")
  parser.add_argument("--learning_rates", default="step", help=f"the remapped ranker's: {', '.join(LEARNING_RATES)}")
  parser.add_argument("--output", default="sid_refresh.jsonl")
  args = parser.parse_args(argv)
  loop_config = pipeline_runs.load_config(args.output_root)
  inputs = experiments.load_inputs(args.output_root, args.max_spans)
  splits = list(inputs.splits.values())
  after = args.refresh_after
  if not 0 < after < len(splits) - 1:
    raise SystemExit(f"--refresh_after must leave spans on both sides: 1 .. {len(splits) - 2}")
  loop_catalog = inputs.catalogs["v1"]
  ids = loop_catalog.item_ids
  levels, size = loop_catalog.codes.shape[1], loop_catalog.codebook_size
  impressions, corpus, refreshed = refreshed_sids(loop_config, loop_catalog, splits, after)
  variants = {name: (Catalog(ids, codes, size, loop_catalog.content), codes, changes)
              for name, (codes, changes) in refreshed.items()}
  windows = [int(w) for w in args.windows.split(",")]
  methods = args.methods.split(",")
  runs = Runs(args.output, len(splits) - 1, after)

  for seed in range(args.seeds):
    config = RankingConfig.from_dict({**loop_config.ranking, "seed": seed})
    spm_models = {name: spm.train(codes[corpus], impressions[corpus], levels, size, config.table_rows)
                  for name, (_, codes, _) in variants.items()}
    stale = ranking.build(config, loop_catalog, inputs.spm_models.get(config.table_rows))
    experiments.warm_up(stale, splits[0])
    for index in range(1, after + 1):
      experiments.train_step(stale, splits[index], index)
    history = _concatenated(splits[:after + 1])
    plan = [(f"remap {method}{' fit all' if carry == 'fit' else ''} {window}{LEARNING_RATES[lr]}",
             sids, method, window, carry == "copy", lr) for sids in variants for method in methods
            for carry in args.carry.split(",") for window in windows for lr in args.learning_rates.split(",")]
    plan += [("scratch", sids, None, None, None, None) for sids in variants]
    for arm, sids, method, window, carry, lr in plan:
      if runs.finished(arm, sids, seed):
        continue
      new = ranking.build(config, variants[sids][0], spm_models[sids])
      start = time.perf_counter()
      if method:
        _, before = remap.window(history[fields.TIMESTAMP].numpy(), window)
        interactions, liked = remap.item_counts(ids, history[fields.ITEM_ID].numpy()[before],
                                                history[fields.LABEL].numpy()[before])
        remap.remap(stale, new, ids, interactions, liked, method, carry_pieces=carry)
        remap_seconds = time.perf_counter() - start
        if lr == "step":
          ranking.use_step_learning_rates(new)
        examples = experiments.train_step(new, experiments.kept_rows(history, ~before), after)
        ranking.use_step_learning_rates(new)  # as the daily runs after the refresh set them
      else:
        remap_seconds = 0.0
        examples = experiments.warm_up(new, history, ranking.most_recent(history[fields.TIMESTAMP].numpy(),
                                                                         config.warmup_examples))
      seconds = time.perf_counter() - start
      runs.record({"arm": arm, "sids": sids, "seed": seed, "train_examples": examples,
                   "train_seconds": round(seconds, 1), "remap_seconds": round(remap_seconds, 1),
                   **_after_refresh(new, splits, after)})
    if not runs.finished("stale", "loop", seed):
      runs.record({"arm": "stale", "sids": "loop", "seed": seed, "train_examples": 0, "train_seconds": 0.0,
                   **_after_refresh(stale, splits, after)})
  _print_table(runs, variants)
  return 0


def _after_refresh(model: ranking.RankingModel, splits: List[Dict[str, tf.Tensor]], after: int) -> Dict:
  """Each span after the refresh scored, then trained on: AUC slices over them."""
  per_span = []
  for index in range(after + 1, len(splits)):
    per_span.append(experiments.score(model, splits[index]))
    experiments.train_step(model, splits[index], index)
  slices = evaluation.mean_over_spans(per_span)
  return {key: slices[key]["auc"] for key in SLICES}


def _print_table(runs: Runs, variants: Dict) -> None:
  rows = runs.rows()
  print(f"\nSpans {runs.after + 1}..{runs.spans} after a refresh after span {runs.after}; mean ± std over seeds")
  print("| arm | SIDs | AUC | cold-start | training examples | training s | seeds |")
  print("| --- | --- | --- | --- | --- | --- | --- |")
  for arm, sids in dict.fromkeys((r["arm"], r["sids"]) for r in rows):
    found = [r for r in rows if (r["arm"], r["sids"]) == (arm, sids)]
    cells = [f"{np.mean([r[k] for r in found]):.4f} ± {np.std([r[k] for r in found]):.4f}" for k in SLICES]
    print(f"| {arm} | {sids} | {' | '.join(cells)} | {np.mean([r['train_examples'] for r in found]):,.0f} | "
          f"{np.mean([r['train_seconds'] for r in found]):.1f} | {len(found)} |")
  for name, (_, _, changes) in variants.items():
    print(f"{name}: code changed per level {changes['changed_share']}, SID changed {changes['sid_changed_share']:.4f}"
          f" ({changes['items_in_both']} items)")


if __name__ == "__main__":
  sys.exit(main())
