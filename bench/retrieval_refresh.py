"""A SID refresh in the middle of the loop, for the retrieval model (TIGER): keep the stale SIDs, or refresh and
train a new model from scratch, or refresh and remap the loop's model onto the new SIDs
(models/retrieval/remap.py). bench/sid_refresh.py does the same for the ranker, on the same refreshed SIDs.

  .venv/bin/python bench/retrieval_refresh.py --output_root OUT [--max_spans 12] [--refresh_after 6] \\
      [--seeds 3] [--windows 20000] [--arms stale,scratch,fit,copy] [--evaluation_examples 500] [--output FILE]
  (after the loop has run those spans: the main command, then python -m pipeline.replay)

After span R (--refresh_after) a new RQ-VAE learns from every item the loop had seen by then (from scratch,
and started from the loop's: stable codes), as in bench/sid_refresh.py. The arms start from:
- stale: the loop's retrieval model trained through span R (its own daily runs), on the loop's SIDs;
- scratch: a new model on the new SIDs (from an RQ-VAE trained from scratch), warmed up as the SID refresh
  warms it up (the latest warmup_examples interactions through span R, warmup_epochs passes);
- fit / copy: the loop's model at span R with its tokens remapped onto the new SIDs (copy: stable codes only),
  then one pass over the latest W interactions through span R (--windows) at a daily step's learning rate.
Then each spends spans R+1.. as the daily runs do: scored (full-catalog Recall@10 and NDCG@10 over a fixed
sample of each span's interactions, the same for every arm; overall and on items first seen in the span),
then trained one pass. Prints the mean over seeds (a seed changes the order of every pass, and the scratch
arm's initial weights) and appends every run to --output (JSON lines; a re-run skips those done).
"""

import argparse
import os
import sys
import time
from typing import Dict, List, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from bench.sid_refresh import Runs, refreshed_sids
from formats import artifacts, semantic_ids, spans
from formats import interaction_features as fields
from models.ranking import model as ranking
from models.ranking.remap import item_counts
from models.ranking.remap import window as remap_window
from models.ranking.trainer import checkpoint_dir
from models.retrieval import data, evaluation, remap, serving, trainer
from models.retrieval.config import RetrievalConfig
from models.retrieval.model import TigerModel
from models.retrieval.sid_tokens import ItemTokens, SidCatalog
from pipeline import experiments, summary
from pipeline import runs as pipeline_runs

METRICS = ("recall@10", "ndcg@10")
SLICES = (evaluation.OVERALL, evaluation.NEW_ITEMS)
SCRATCH_RQVAE, STABLE_CODES = "scratch RQ-VAE", "stable codes"  # bench/sid_refresh.py's refreshed SIDs


class Arm:
  """A retrieval model over a catalog, spending spans as the daily runs do."""

  def __init__(self, model: TigerModel, catalog: SidCatalog, trained_items: np.ndarray):
    self.model, self.catalog, self.trained_items = model, catalog, trained_items
    self.item_tokens = ItemTokens(catalog, model.layout)

  def train(self, files: List[str], epochs: int, keep: Optional[np.ndarray], seed: int) -> int:
    """Passes over the interactions of `files` that `keep` marks (None: all); -> examples per pass."""
    config = self.model.config
    items = ranking.columns(files, {fields.ITEM_ID: fields.COUNTING_SPEC[fields.ITEM_ID]})[fields.ITEM_ID]
    items = items if keep is None else items[keep]
    nameable = self.item_tokens.rows(items).numpy() >= 0
    self.model.fit(data.dataset(files, self.item_tokens, self.model.layout, config, shuffle_seed=seed,
                                cache=epochs > 1, keep=keep), epochs=epochs, verbose=0)
    self.trained_items = np.union1d(self.trained_items, items[nameable])
    return int(nameable.sum())

  def score(self, files: List[str], keep: Optional[np.ndarray], beam: int) -> Dict:
    retriever = serving.Retriever(*serving.model_functions(self.model), self.catalog, self.model.layout,
                                  self.model.config, self.trained_items)
    return trainer.evaluate(retriever, files, beam, keep)


def _files(examples) -> List[str]:
  return [io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], artifacts.INTERACTIONS_SPLIT))]


def _loop_model_dir(store, pipeline_name: str, span: int) -> str:
  """The checkpoint of the loop's retrieval model trained through `span` (its daily run's, the last run's)."""
  models = [model for model, _ in summary.output_history(store, pipeline_name, "RetrievalTrainer", "model")
            if model.custom_properties["span"].int_value == span]
  if not models:
    raise SystemExit(f"no retrieval model of span {span} in ML Metadata: run the loop's daily runs first")
  return checkpoint_dir(path_utils.serving_model_path(models[-1].uri))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output_root", required=True)
  parser.add_argument("--max_spans", type=int, default=12)
  parser.add_argument("--refresh_after", type=int, default=6)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--windows", default="20000", help="latest interactions a remapped model trains on")
  parser.add_argument("--arms", default="stale,scratch,fit,copy")
  parser.add_argument("--evaluation_examples", type=int, default=500, help="sampled interactions scored per span")
  parser.add_argument("--beam", type=int, default=20)
  parser.add_argument("--output", default="retrieval_refresh.jsonl")
  args = parser.parse_args(argv)
  loop_config = pipeline_runs.load_config(args.output_root)
  store = summary.readonly_store(loop_config.metadata_path)
  inputs = experiments.load_inputs(args.output_root, args.max_spans)
  names = list(inputs.splits)
  splits = [inputs.splits[name] for name in names]
  files = dict((name, _files(examples)) for name, examples in
               experiments.interaction_sequence(store, loop_config.pipeline_name) if name in inputs.splits)
  after = args.refresh_after
  if not 0 < after < len(splits) - 1:
    raise SystemExit(f"--refresh_after must leave spans on both sides: 1 .. {len(splits) - 2}")
  outputs = summary.latest_node_outputs(store, loop_config.pipeline_name)
  ids, codes, suffixes = semantic_ids.load(summary.latest_artifact(outputs, artifacts.SemanticIds, "semantic_ids",
                                                                   "SemanticIdAssigner"))
  loop_catalog = inputs.catalogs["v1"]
  catalogs = {"loop": SidCatalog(ids, codes, suffixes, loop_catalog.codebook_size)}
  _, _, refreshed = refreshed_sids(loop_config, loop_catalog, splits, after)
  catalogs.update({name: SidCatalog.from_codes(ids, new_codes, loop_catalog.codebook_size)
                   for name, (new_codes, _) in refreshed.items()})
  loop_dir = _loop_model_dir(store, loop_config.pipeline_name, spans.span_of_split(names[after]))
  history = [f for name in names[:after + 1] for f in files[name]]
  columns = ranking.columns(history, {name: fields.COUNTING_SPEC[name] for name in (fields.TIMESTAMP, fields.ITEM_ID)})
  timestamps, history_items = columns[fields.TIMESTAMP], columns[fields.ITEM_ID]
  samples = {name: evaluation.sample(len(ranking.columns(files[name], {fields.ITEM_ID: fields.COUNTING_SPEC[
      fields.ITEM_ID]})[fields.ITEM_ID]), args.evaluation_examples, 0) for name in names[after + 1:]}

  runs = Runs(args.output, len(splits) - 1, after)

  arms = args.arms.split(",")
  plan = [("stale", "loop", None)] if "stale" in arms else []
  # Scratch as the pipeline's refresh runs it (rqvae_warm_start false); copy keeps the code numbers, which mean
  # nothing after an RQ-VAE trained from scratch (bench/sid_refresh.py), so only with stable codes.
  plan += [("scratch", SCRATCH_RQVAE, None)] if "scratch" in arms else []
  plan += [(f"remap {method} {window}", sids, (method, window)) for sids in refreshed for method in remap.METHODS
           if method in arms and (method == remap.FIT or sids == STABLE_CODES)
           for window in (int(w) for w in args.windows.split(","))]
  for seed in range(args.seeds):
    config = RetrievalConfig.from_dict({**loop_config.retrieval, "seed": seed})
    for arm, sids, how in plan:
      if runs.finished(arm, sids, seed):
        continue
      catalog = catalogs[sids]
      model = trainer.build(config, catalog.layout(config.suffix_size, config.user_buckets))
      start, examples, report = time.perf_counter(), 0, None
      if arm == "scratch":
        state = Arm(model, catalog, np.zeros(0, np.int64))
        examples = config.warmup_epochs * state.train(
            history, config.warmup_epochs, ranking.most_recent(timestamps, config.warmup_examples), seed)
      else:
        trained = trainer.warm_start(model, loop_dir, "the loop's model is of another architecture")
        model.optimizer.learning_rate.assign(config.step_learning_rate)
        state = Arm(model, catalog, trained)
        if how:
          method, window = how
          recent, before = remap_window(timestamps, window)
          interactions, _ = item_counts(ids, history_items[before])
          report = remap.remap(model, catalogs["loop"], catalog, interactions, method)
          examples = state.train(history, 1, recent, seed)
      seconds = time.perf_counter() - start
      per_span = []
      for name in names[after + 1:]:
        per_span.append(state.score(files[name], samples[name], args.beam))
        state.model.optimizer.learning_rate.assign(config.step_learning_rate)
        state.train(files[name], config.epochs, None, seed)
      row = {"arm": arm, "sids": sids, "seed": seed, "train_examples": examples, "train_seconds": round(seconds, 1),
             "remapped": report, "per_span": per_span}
      for slice_name in SLICES:
        for metric in METRICS:
          hits = [s[slice_name][metric] * s[slice_name]["examples"] for s in per_span if s[slice_name]["examples"]]
          row[f"{slice_name} {metric}"] = sum(hits) / max(1, sum(s[slice_name]["examples"] for s in per_span))
      runs.record(row)
  _print_table(runs)
  return 0


def _print_table(runs: Runs) -> None:
  rows = runs.rows()
  columns = [f"{s} {m}" for s in SLICES for m in METRICS]
  print(f"\nSpans {runs.after + 1}..{runs.spans} after a refresh after span {runs.after}; pooled over spans, "
        "mean ± std over seeds")
  print(f"| arm | SIDs | {' | '.join(columns)} | training examples | training s | seeds |")
  print("| --- " * (len(columns) + 5) + "|")
  for arm, sids in dict.fromkeys((r["arm"], r["sids"]) for r in rows):
    found = [r for r in rows if (r["arm"], r["sids"]) == (arm, sids)]
    cells = [f"{np.mean([r[c] for r in found]):.4f} ± {np.std([r[c] for r in found]):.4f}" for c in columns]
    print(f"| {arm} | {sids} | {' | '.join(cells)} | {np.mean([r['train_examples'] for r in found]):,.0f} | "
          f"{np.mean([r['train_seconds'] for r in found]):.1f} | {len(found)} |")


if __name__ == "__main__":
  sys.exit(main())
