"""The paper's ranking experiments on the production loop's artifacts (Singh et al. 2023, figures 2 and 3,
appendix A.2), mean +/- std over seeds.

  .venv/bin/python -m pipeline.experiments [--output_root outputs] [--seeds 3] [--only spm,random_hash]
      [--data_root DIR [--span_period month] [--start_date 2016-01-01]]
      [--history with|without|both] [--ranking '{"use_counters": true}'] [--output DIR]
  (after the main command; about 20 s per arm and seed on 2 CPUs)

Beside the arms, the report holds the counting baselines on the same spans (models/ranking/baselines.py:
item like-rate, user like-rate, logistic regression and gradient-boosted trees on counters). `--ranking`
sets RankingConfig fields for every arm (the model around the item representation: user id, counters,
cross layers...).

The experiments cover the SID refresh's backfill plus the daily spans the loop has run so far (the main
command runs a few; `python -m pipeline.replay --output_root outputs` runs the rest). Each arm (item
representation x table budget, or dense x tower width; with and without history) is trained as the loop
trains it, continuously: on the backfill, then span by span in span order, each span evaluated by the
model trained on the spans before it (day N+1 by the model of day N) and then trained on. Every arm uses
the loop's latest catalog: every item seen so far, with its Semantic ID and content embedding. AUC is
computed per span, overall and on the cold-start, long-tail and head slices
(models/ranking/evaluation.py), averaged over spans weighted by examples, and reported relative to random
hashing at the smallest table, per seed. Writes report.json, report.md and figures.png.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from ml_metadata import metadata_store
from tfx import types
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from components.figures import plt, save_png
from formats import artifacts, item_embeddings, semantic_ids, sid_vocabulary
from formats import interaction_features as fields
from formats import spans
from formats.errors import InputDataError
from models.ranking import baselines, evaluation
from models.ranking import model as ranking
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from models.ranking.items import PieceItems
from models.rqvae import saved_model
from models.sid_adaptation import spm
from pipeline import configs, local_runner, summary
from pipeline import runs as pipeline_runs

STABILITY_ARMS = ("unigram", "prefix_ngram", "spm")
EXAMPLE_GEN, BACKFILL = "SpanExampleGen", "backfill"
# SpanExampleGen's exec property in backfill mode only: the first daily span's start.
END_DATE = "end_date"
_MAX_NAMED = 10


@dataclasses.dataclass
class Inputs:
  splits: Dict[str, Dict[str, tf.Tensor]]   # "backfill", then "span_<N>" in span order
  catalogs: Dict[str, Catalog]              # "v1" (and "v0": RQ-VAE trained on older items only), same items
  spm_models: Dict[int, bytes]              # SidVocabulary's model per table budget (v1 SIDs)
  impressions: np.ndarray                   # per catalog item, in the vocabulary's training split


def _read_split(examples: types.Artifact) -> Dict[str, tf.Tensor]:
  files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], artifacts.INTERACTIONS_SPLIT), "*"))
  records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
  return tf.io.parse_example(tf.constant(records, tf.string), {**fields.EVALUATION_SPEC, **fields.COUNTING_SPEC})


def interaction_sequence(store: metadata_store.MetadataStore, pipeline_name: str
                         ) -> List[Tuple[str, types.Artifact]]:
  """("backfill", the latest SID refresh's examples), then ("span_<N>", the latest examples of span N) for
  every later span the daily runs ingested, in span order (a re-run span: its last run)."""
  ingested = [(summary.as_artifact(raw, standard_artifacts.Examples), execution) for raw, execution in
              summary.output_history(store, pipeline_name, EXAMPLE_GEN, "examples")]
  backfills = [a for a, execution in ingested if END_DATE in execution.custom_properties]
  if not backfills:
    raise InputDataError(f"no backfill ingested by {pipeline_name}.{EXAMPLE_GEN} in ML Metadata: run the "
                         f"main command (pipeline.local_runner) first")
  backfill = backfills[-1]
  span_of = lambda artifact: artifact.get_int_custom_property(spans.SPAN_PROPERTY)
  latest: Dict[int, types.Artifact] = {}
  for artifact, execution in ingested:  # oldest first: a span's last run wins
    if END_DATE not in execution.custom_properties and span_of(artifact) > span_of(backfill):
      latest[span_of(artifact)] = artifact
  return [(BACKFILL, backfill)] + [(spans.split_name(span), latest[span]) for span in sorted(latest)]


def _named(ids: np.ndarray) -> str:
  more = f" and {len(ids) - _MAX_NAMED} more" if len(ids) > _MAX_NAMED else ""
  return ", ".join(str(i) for i in ids[:_MAX_NAMED]) + more


def _check_covered(ids: np.ndarray, of: str, by_ids: np.ndarray, by: str) -> None:
  """InputDataError naming the items of `ids` (those of `of`) absent from `by_ids` (those of `by`)."""
  missing = np.setdiff1d(ids, by_ids)
  if missing.size:
    raise InputDataError(f"{by} lack {missing.size} of the items of {of}: {_named(missing)}")


def _v0_codes(v0_sids: types.Artifact, v0_model: types.Artifact, ids: np.ndarray, content: np.ndarray
              ) -> np.ndarray:
  """RQ-VAE v0's codes for every item of `ids`: from its Semantic IDs (the SID refresh's items), and for
  the items new since then from the frozen v0 model, as the daily runs encode new items with v1."""
  v0_ids, v0_codes, _ = semantic_ids.load(v0_sids)
  _check_covered(v0_ids, f"the v0 Semantic IDs at {v0_sids.uri}", ids, "the latest Semantic IDs")
  known = np.isin(ids, v0_ids)
  codes = np.zeros((len(ids), v0_codes.shape[1]), np.int64)
  codes[known] = v0_codes[np.searchsorted(v0_ids, ids[known])]
  if not known.all():
    encode = saved_model.load_signatures(path_utils.serving_model_path(v0_model.uri))[saved_model.ENCODE]
    codes[~known] = encode(embeddings=tf.constant(content[~known], tf.float32))[saved_model.CODES_KEY].numpy()
  return codes


def _impressions(vocabulary: types.Artifact, ids: np.ndarray) -> np.ndarray:
  """The vocabulary's impressions per item of `ids`; 0 for items new since its training split."""
  impressed, counts = sid_vocabulary.load_impressions(vocabulary)
  per_item = dict(zip(impressed.tolist(), counts.tolist()))
  return np.array([per_item.get(i, 0) for i in ids.tolist()], np.int64)


def load_inputs(output_root: str, max_spans: Optional[int] = None) -> Inputs:
  """The loop's interactions (interaction_sequence, spans without any left out), its latest catalog with
  v1 and v0 Semantic IDs and content embeddings, and the SID refresh's vocabularies."""
  config = pipeline_runs.load_config(output_root)
  store = summary.readonly_store(config.metadata_path)
  outputs = summary.latest_node_outputs(store, config.pipeline_name)
  sids = summary.latest_artifact(outputs, artifacts.SemanticIds, "semantic_ids", "SemanticIdAssigner")
  embeddings = summary.latest_artifact(outputs, artifacts.ItemEmbeddings, "embeddings", *summary.EMBEDDING_NODES)
  vocabulary = summary.latest_artifact(outputs, artifacts.SidVocabulary, "vocabulary", "SidVocabBuilder")
  ids, codes, _ = semantic_ids.load(sids)
  embedding_ids, content = item_embeddings.load(embeddings)
  named_sids, named_embeddings = f"the Semantic IDs at {sids.uri}", f"the item embeddings at {embeddings.uri}"
  _check_covered(ids, named_sids, embedding_ids, named_embeddings)
  _check_covered(embedding_ids, named_embeddings, ids, named_sids)
  catalogs = {"v1": Catalog(ids, codes, sids.get_int_custom_property("codebook_size"), content)}
  if "SemanticIdAssignerV0" in outputs:
    v0_sids = summary.latest_artifact(outputs, artifacts.SemanticIds, "semantic_ids", "SemanticIdAssignerV0")
    v0_model = summary.latest_artifact(outputs, artifacts.RQVAEModel, "model", "RQVAETrainerV0")
    catalogs["v0"] = Catalog(ids, _v0_codes(v0_sids, v0_model, ids, content),
                             v0_sids.get_int_custom_property("codebook_size"), content)
  sequence = interaction_sequence(store, config.pipeline_name)
  if max_spans is not None:  # the backfill, then the first max_spans spans
    sequence = sequence[:max_spans + 1]
  read = ((name, _read_split(examples)) for name, examples in sequence)
  budgets = sid_vocabulary.settings(vocabulary)["table_budgets"]
  return Inputs(splits={name: features for name, features in read if len(features[fields.LABEL])},
                catalogs=catalogs, spm_models={b: sid_vocabulary.load_model(vocabulary, b) for b in budgets},
                impressions=_impressions(vocabulary, ids))


def grid(budgets: List[int]) -> List[Dict[str, Any]]:
  """Figures 2 and 3: every representation at every budget, dense at three tower widths."""
  arms = [dict(representation=r, table_rows=b) for r in ("random_hash", "spm", "prefix_ngram") for b in budgets]
  arms += [dict(representation="dense", width_multiplier=w) for w in (1.0, 1.5, 2.0)]
  arms += [dict(representation="unigram"), dict(representation="bigram")]
  return [dict(arm, use_history=h) for h in (False, True) for arm in arms]


def _batches(features: Dict[str, tf.Tensor], batch_size: int, seed: Optional[int]) -> tf.data.Dataset:
  data = tf.data.Dataset.from_tensor_slices(features)
  if seed is not None:
    data = data.shuffle(len(features[fields.LABEL]), seed=seed)
  return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def counting_columns(features: Dict[str, tf.Tensor]) -> Dict[str, np.ndarray]:
  """What a model counts after training on a span (RankingModel.count), as arrays."""
  return {name: features[name].numpy() for name in fields.COUNTING_SPEC}


def kept_rows(features: Dict[str, tf.Tensor], keep: Optional[np.ndarray]) -> Dict[str, tf.Tensor]:
  """The examples `keep` marks (all with None)."""
  if keep is None:
    return features
  mask = tf.constant(keep)
  return {name: tf.ragged.boolean_mask(value, mask) if isinstance(value, tf.RaggedTensor)
          else tf.boolean_mask(value, mask) for name, value in features.items()}


def warm_up(model: ranking.RankingModel, features: Dict[str, tf.Tensor], keep: Optional[np.ndarray] = None) -> int:
  """The first step, as models/ranking/trainer.py trains it: the warm-up epochs on the examples `keep` marks
  (all with None), every example counted. Returns the examples processed."""
  config, span = model.config, counting_columns(features)
  train = {**kept_rows(features, keep), **model.warmup_features(span, keep)}
  model.fit(_batches(train, config.batch_size, config.seed), epochs=config.warmup_epochs, verbose=0)
  model.count(span)
  ranking.use_step_learning_rates(model)
  return len(train[fields.LABEL]) * config.warmup_epochs


def train_step(model: ranking.RankingModel, features: Dict[str, tf.Tensor], index: int) -> int:
  """A continuous-training step on span `index`, then its interactions counted; returns the examples processed."""
  config = model.config
  model.fit(_batches(features, config.batch_size, config.seed + index), epochs=config.epochs, verbose=0)
  model.count(counting_columns(features))
  return len(features[fields.LABEL]) * config.epochs


def score(model: ranking.RankingModel, features: Dict[str, tf.Tensor]) -> Dict[str, Any]:
  """AUC slices of the model's predictions on a span (before it trains on it)."""
  scores = model.predict(_batches(features, 4096, None), verbose=0)
  return evaluation.sliced_auc(features[fields.LABEL].numpy(), scores,
                               evaluation.slice_masks(features[fields.ITEM_SEGMENT].numpy()))


def run_arm(config: RankingConfig, inputs: Inputs, catalog: Catalog, spm_model: Optional[bytes]) -> Dict[str, Any]:
  """Continuous training over the spans; AUC slices of each span's predictions before training on it."""
  start = time.perf_counter()
  model = ranking.build(config, catalog, spm_model)
  per_span, candidates = [], []
  for index, features in enumerate(inputs.splits.values()):
    if not index:
      warm_up(model, features)
      continue
    per_span.append(score(model, features))  # every span is evaluated before the model sees it
    candidates.append(features[fields.ITEM_ID].numpy())
    train_step(model, features, index)
  lookups, rows = None, None
  if isinstance(model.items, PieceItems):
    pieces = model.items.pieces(tf.constant(np.concatenate(candidates)))
    lookups, rows = float(np.mean(pieces.row_lengths().numpy())), int(model.items.tokenizer.num_rows)
  return {"arm": config.name, **dataclasses.asdict(config), "seconds": time.perf_counter() - start,
          "lookups_per_item": lookups, "embedding_rows": rows, "evaluated_spans": len(per_span),
          "slices": evaluation.mean_over_spans(per_span)}


def run_baselines(inputs: Inputs, decayed: bool = False, history_window: int = 0) -> List[Dict[str, Any]]:
  """The counting baselines (models/ranking/baselines.py) on the spans the arms are evaluated on; the
  logistic regression and the trees are refitted before each span on every interaction before it (with
  `decayed`, on the decayed counters too; with `history_window`, the history like-rate over that window, as a
  ranker's RankingConfig.history_window reads it)."""
  splits = [fields.windowed(split, history_window) for split in inputs.splits.values()]
  per_span: Dict[str, List[Dict[str, Any]]] = {}
  for index in range(1, len(splits)):
    features = splits[index]
    masks = evaluation.slice_masks(features[fields.ITEM_SEGMENT].numpy())
    for name, score in baselines.scorers(splits[:index], decayed).items():
      per_span.setdefault(name, []).append(
          evaluation.sliced_auc(features[fields.LABEL].numpy(), score(features), masks))
  return [{"arm": name, "slices": evaluation.mean_over_spans(results)} for name, results in per_span.items()]


def _baseline(run: Dict[str, Any], budgets: List[int]) -> str:
  """Random hashing at the smallest budget, with the run's other settings (history, counters...)."""
  settings = {f.name: run[f.name] for f in dataclasses.fields(RankingConfig) if f.name in run}
  return RankingConfig.from_dict({**settings, "representation": "random_hash", "table_rows": min(budgets),
                                  "width_multiplier": 1.0}).name


def aggregate(runs: List[Dict[str, Any]], budgets: List[int]) -> List[Dict[str, Any]]:
  """Mean and std over seeds per arm and slice, AUC relative to the baseline of the same seed (%)."""
  by_key = {(r["arm"], r["seed"], r.get("catalog", "v1")): r for r in runs}
  rows: Dict[tuple, Dict[str, Any]] = {}
  for run in runs:
    key = (run["arm"], run.get("catalog", "v1"))
    row = rows.setdefault(key, {"arm": run["arm"], "catalog": key[1], "representation": run["representation"],
                                "use_history": run["use_history"], "embedding_rows": run["embedding_rows"],
                                "lookups_per_item": run["lookups_per_item"], "seeds": [], "values": {}})
    row["seeds"].append(run["seed"])
    baseline = by_key.get((_baseline(run, budgets), run["seed"], "v1"))
    for name in evaluation.SLICES:
      value = run["slices"][name]["auc"]
      row["values"].setdefault(f"{name}_auc", []).append(value)
      base = baseline["slices"][name]["auc"] if baseline else None
      row["values"].setdefault(f"{name}_relative_pct", []).append(
          100 * (value / base - 1) if value is not None and base else None)
    row["examples"] = {name: run["slices"][name]["examples"] for name in evaluation.SLICES}
  result = []
  for row in rows.values():
    for metric, values in row.pop("values").items():
      present = [v for v in values if v is not None]
      row[metric] = {"mean": float(np.mean(present)) if present else None,
                     "std": float(np.std(present)) if present else None, "n": len(present)}
    result.append(row)
  return result


def _cell(stat: Dict[str, Any], digits: int = 4, sign: bool = False) -> str:
  if stat["mean"] is None:
    return "n/a"
  return f"{stat['mean']:{'+' if sign else ''}.{digits}f} ± {stat['std']:.{digits}f}"


def markdown(rows: List[Dict[str, Any]], runs: List[Dict[str, Any]], budgets: List[int],
             counting: List[Dict[str, Any]]) -> str:
  seeds = sorted({r["seed"] for r in runs})
  lines = [f"# Ranking experiments: mean ± std over seeds {seeds}", "",
           f"Baseline for relative AUC: random hashing at {min(budgets):,} rows, same history setting "
           "and seed. Evaluated spans: each by the model trained on the spans before it.", "",
           "## Counting baselines (same spans, no model)", "",
           "| baseline | AUC | cold-start AUC | long-tail AUC |", "|---|---|---|---|"]
  auc_cell = lambda value: "n/a" if value is None else f"{value:.4f}"
  for baseline in counting:
    lines.append(f"| {baseline['arm']} | " + " | ".join(auc_cell(baseline["slices"][s]["auc"])
                                                      for s in ("overall", "cold_start", "long_tail")) + " |")
  lines.append("")
  for history in (False, True):
    lines += [f"## {'With' if history else 'Without'} user history", "",
              "| arm | rows | lookups/item | AUC | rel. % | cold-start AUC | rel. % | long-tail AUC | rel. % |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in (r for r in rows if r["use_history"] == history and r["catalog"] == "v1"):
      lookups = f"{row['lookups_per_item']:.2f}" if row["lookups_per_item"] is not None else "dense"
      lines.append(f"| {row['arm']} | {row['embedding_rows'] or '-'} | {lookups} | "
                   + " | ".join(f"{_cell(row[s + '_auc'])} | {_cell(row[s + '_relative_pct'], 2, True)}"
                                for s in ("overall", "cold_start", "long_tail")) + " |")
    lines.append("")
  v0 = [r for r in rows if r["catalog"] == "v0"]
  if v0:
    lines += ["## Appendix A.2: SIDs from RQ-VAE v0 (items first rated before the cut-off) vs v1", "",
              "| arm | v1 AUC | v0 AUC | v1 cold-start AUC | v0 cold-start AUC |", "|---|---|---|---|---|"]
    for row in v0:
      v1 = next(r for r in rows if r["arm"] == row["arm"] and r["catalog"] == "v1")
      lines.append(f"| {row['arm']} | {_cell(v1['overall_auc'])} | {_cell(row['overall_auc'])} | "
                   f"{_cell(v1['cold_start_auc'])} | {_cell(row['cold_start_auc'])} |")
    lines.append("")
  example = runs[0]["slices"]
  lines.append("Evaluated interactions: " + ", ".join(f"{s} {example[s]['examples']:,}" for s in evaluation.SLICES))
  return "\n".join(lines) + "\n"


def figures(directory: str, rows: List[Dict[str, Any]]) -> str:
  """Figures 2 and 3 of the paper: AUC relative to the baseline vs table rows, per slice and setting."""
  figure, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
  for col, history in enumerate((False, True)):
    for line, name in enumerate(("overall", "cold_start")):
      axis = axes[line][col]
      of_setting = [r for r in rows if r["use_history"] == history and r["catalog"] == "v1"]
      for index, representation in enumerate(("random_hash", "spm", "prefix_ngram", "unigram", "bigram")):
        points = sorted((r["embedding_rows"], r[f"{name}_relative_pct"]) for r in of_setting
                        if r["representation"] == representation and r[f"{name}_relative_pct"]["mean"] is not None)
        if points:
          axis.errorbar([p[0] for p in points], [p[1]["mean"] for p in points], [p[1]["std"] for p in points],
                        marker="o", capsize=3, color=f"C{index}", label=representation)
      for style, row in zip((":", "-.", "--"), (r for r in of_setting if r["representation"] == "dense")):
        if row[f"{name}_relative_pct"]["mean"] is not None:
          axis.axhline(row[f"{name}_relative_pct"]["mean"], color="gray", linestyle=style, label=row["arm"])
      axis.set(xscale="log", xlabel="embedding table rows", ylabel=f"{name} AUC vs baseline (%)",
               title=f"{name}, {'with' if history else 'without'} history")
      axis.legend(fontsize=7)
  figure.tight_layout()
  return save_png(figure, directory, "figures.png")


def _write(directory: str, runs: List[Dict[str, Any]], budgets: List[int], counting: List[Dict[str, Any]]) -> None:
  rows = aggregate(runs, budgets)
  with tf.io.gfile.GFile(os.path.join(directory, "report.json"), "w") as f:
    json.dump({"table_budgets": budgets, "baselines": counting, "arms": rows, "runs": runs}, f, indent=1)
  with tf.io.gfile.GFile(os.path.join(directory, "report.md"), "w") as f:
    f.write(markdown(rows, runs, budgets, counting))
  figures(directory, rows)


def _args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--only", default="", help="comma-separated representations to run (default: all)")
  parser.add_argument("--ranking", default="{}", help="JSON of RankingConfig settings every arm gets, e.g. "
                      "'{\"use_counters\": false}' (default: the pipeline's defaults)")
  parser.add_argument("--history", choices=("with", "without", "both"), default="both",
                      help="which user-history settings to run")
  parser.add_argument("--output_root", default=configs.OUTPUT_ROOT, help="the main command's output root")
  parser.add_argument("--max_spans", type=int, help="evaluate only the first N spans (e.g. to choose settings "
                      "on early months and report on the rest)")
  parser.add_argument("--data_root", help="a MovieLens-format directory: first run the loop on it into "
                      "--output_root, over every span (pipeline.local_runner; resumable)")
  parser.add_argument("--span_period", help="with --data_root (default: chosen from the data)")
  parser.add_argument("--start_date", help="with --data_root: the first evaluated span's date (default: chosen "
                      "from the data)")
  parser.add_argument("--output", help="default: <output_root>/experiments")
  return parser.parse_args(argv)


def _run_loop(args) -> int:
  """The main command's loop on --data_root, over every span: the experiments' input."""
  argv = ["--data_root", args.data_root, "--output_root", args.output_root, "--replay_spans", local_runner.ALL_SPANS]
  for flag in ("span_period", "start_date"):
    if getattr(args, flag):
      argv += [f"--{flag}", getattr(args, flag)]
  return local_runner.main(argv)


def main(argv=None) -> int:
  args = _args(argv)
  return pipeline_runs.run_holding(args.output_root, "the experiments", lambda: _experiments(args),
                                   "Experiments stopped")


def _experiments(args) -> int:
  if args.data_root and _run_loop(args):
    print("Experiments stopped: the loop on --data_root did not finish", file=sys.stderr)
    return 2
  try:
    inputs = load_inputs(args.output_root, args.max_spans)
  except InputDataError as error:
    print(f"Experiments stopped: {error}", file=sys.stderr)
    return 2
  output = args.output or os.path.join(args.output_root, "experiments")
  budgets = sorted(inputs.spm_models)
  only = set(filter(None, args.only.split(",")))
  tf.io.gfile.makedirs(output)
  progress = os.path.join(output, "runs.jsonl")
  done = []
  if tf.io.gfile.exists(progress):  # resume: a crash loses at most the run in flight
    with tf.io.gfile.GFile(progress) as f:
      done = [json.loads(line) for line in f if line.strip()]
  finished = {(r["arm"], r["seed"], r.get("catalog", "v1")) for r in done}
  try:
    overrides = json.loads(args.ranking)
    if not isinstance(overrides, dict):
      raise ValueError(f"expected a JSON object, got {args.ranking}")
    counting = RankingConfig.from_dict(overrides)  # the arms' counting features, which the baselines read too
  except ValueError as error:
    print(f"Experiments stopped: --ranking: {error}", file=sys.stderr)
    return 2
  stability = [{**dict(representation=r, table_rows=budgets[len(budgets) // 2], use_history=True), **overrides}
               for r in STABILITY_ARMS] if "v0" in inputs.catalogs else []
  histories = {"with": (True,), "without": (False,), "both": (False, True)}[args.history]
  # Overrides can make arms identical (e.g. one table size for all): each runs once.
  arms = list({json.dumps(a, sort_keys=True): a for a in ({**arm, **overrides} for arm in grid(budgets)
                                                          if arm["use_history"] in histories)}.values())
  plan = [(arm, seed, "v1") for seed in range(args.seeds) for arm in arms]
  plan += [(arm, seed, "v0") for seed in range(args.seeds) for arm in stability]
  plan = [p for p in plan if not only or p[0]["representation"] in only]
  print(f"{len(inputs.splits) - 1} evaluated spans; {len(plan)} runs, {len(finished)} already done", flush=True)
  for arm, seed, version in plan:
    config = RankingConfig(**arm, seed=seed)
    if (config.name, seed, version) in finished:
      continue
    catalog = inputs.catalogs[version]
    spm_model = inputs.spm_models.get(config.table_rows) if version == "v1" else None
    if config.representation == "spm" and version == "v0":
      spm_model = spm.train(catalog.codes, inputs.impressions, catalog.codes.shape[1], catalog.codebook_size,
                            config.table_rows)
    run = {**run_arm(config, inputs, catalog, spm_model), "catalog": version}
    done.append(run)
    with tf.io.gfile.GFile(progress, "a") as f:
      f.write(json.dumps(run) + "\n")
    overall, cold = run["slices"]["overall"]["auc"], run["slices"]["cold_start"]["auc"]
    print(f"{config.name:<32} {version} seed {seed}: AUC {overall:.4f}, cold-start "
          f"{cold if cold is None else round(cold, 4)} ({run['seconds']:.0f}s)", flush=True)
  _write(output, done, budgets, run_baselines(inputs, counting.uses_decayed_counters, counting.counter_window))
  print(f"Report: {os.path.join(output, 'report.md')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
