"""The paper's ranking experiments on the pipeline's artifacts (Singh et al. 2023, figures 2 and 3,
appendix A.2), mean +/- std over seeds.

  .venv/bin/python -m pipeline.experiments [--seeds 3] [--only spm,random_hash] [--output DIR]
  (after ./scripts/run_pipeline.sh; about 20 s per arm and seed on 2 CPUs)

Each arm (item representation x table budget, or dense x tower width; with and without history)
is trained as the pipeline trains it, continuously: on `backfill`, then span by span in time
order, each span evaluated by the model trained on the spans before it (day N+1 by the model of
day N) and then trained on. AUC is computed per span, overall and on the cold-start, long-tail and
head slices (models/ranking/evaluation.py), averaged over spans weighted by examples, and
reported relative to random hashing at the smallest table, per seed. Writes report.json,
report.md and figures.png.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top
from tfx.types import artifact_utils, standard_artifacts  # pylint: disable=g-import-not-at-top

from formats import artifacts, item_embeddings, semantic_ids, sid_vocabulary  # pylint: disable=g-import-not-at-top
from components.figures import plt, save_png  # pylint: disable=g-import-not-at-top
from formats import spans  # pylint: disable=g-import-not-at-top
from models.ranking import evaluation  # pylint: disable=g-import-not-at-top
from models.ranking import model as ranking  # pylint: disable=g-import-not-at-top
from models.ranking.catalog import Catalog  # pylint: disable=g-import-not-at-top
from models.ranking.config import RankingConfig  # pylint: disable=g-import-not-at-top
from models.ranking.items import PieceItems  # pylint: disable=g-import-not-at-top
from models.sid_adaptation import spm  # pylint: disable=g-import-not-at-top
from pipeline import configs, summary  # pylint: disable=g-import-not-at-top

EVAL_SPEC = {**ranking.TRAINING_SPEC, "item_segment": tf.io.FixedLenFeature([], tf.string)}
STABILITY_ARMS = ("unigram", "prefix_ngram", "spm")


@dataclasses.dataclass
class Inputs:
  splits: Dict[str, Dict[str, tf.Tensor]]   # "backfill", then span splits in time order
  catalogs: Dict[str, Catalog]              # "v1" (and "v0": RQ-VAE trained on older items only)
  spm_models: Dict[int, bytes]              # SidVocabulary's model per table budget (v1 SIDs)
  impressions: np.ndarray                   # per catalog item, in the vocabulary's training splits


def _read_split(examples: standard_artifacts.Examples, split: str) -> Dict[str, tf.Tensor]:
  files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
  records = tf.constant(list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()))
  return tf.io.parse_example(records, EVAL_SPEC)


def load_inputs(metadata_path: str) -> Inputs:
  """The latest run's interactions, Semantic IDs (v1, v0), vocabularies and content embeddings."""
  outputs = summary.latest_outputs_at(metadata_path, configs.PIPELINE_NAME)
  examples = summary.as_artifact(outputs["MovieLensExampleGen"]["examples"], standard_artifacts.Examples)
  names = artifact_utils.decode_split_names(examples.split_names)
  ordered = ["backfill"] + sorted((n for n in names if n != "backfill"), key=spans.span_of_split)
  embedding_node = "ContentEmbedder" if "ContentEmbedder" in outputs else "EmbeddingImporter"
  embedding_ids, content = item_embeddings.load(
      summary.as_artifact(outputs[embedding_node]["embeddings"], artifacts.ItemEmbeddings))
  vocabulary = summary.as_artifact(outputs["SidVocabBuilder"]["vocabulary"], artifacts.SidVocabulary)
  settings = sid_vocabulary.settings(vocabulary)
  catalogs = {}
  for version, node in (("v1", "SemanticIdAssigner"), ("v0", "SemanticIdAssignerV0")):
    if node in outputs:
      ids, codes, _ = semantic_ids.load(summary.as_artifact(outputs[node]["semantic_ids"], artifacts.SemanticIds))
      if not np.array_equal(ids, embedding_ids):
        raise ValueError(f"{node} and {embedding_node} cover different items")
      catalogs[version] = Catalog(ids, codes, settings["codebook_size"], content)
  _, impressions = sid_vocabulary.load_impressions(vocabulary)
  return Inputs(splits={name: _read_split(examples, name) for name in ordered}, catalogs=catalogs,
                spm_models={b: sid_vocabulary.load_model(vocabulary, b) for b in settings["table_budgets"]},
                impressions=impressions)


def grid(budgets: List[int]) -> List[Dict[str, Any]]:
  """Figures 2 and 3: every representation at every budget, dense at three tower widths."""
  arms = [dict(representation=r, table_rows=b) for r in ("random_hash", "spm", "prefix_ngram") for b in budgets]
  arms += [dict(representation="dense", width_multiplier=w) for w in (1.0, 1.5, 2.0)]
  arms += [dict(representation="unigram"), dict(representation="bigram")]
  return [dict(arm, use_history=h) for h in (False, True) for arm in arms]


def _batches(features: Dict[str, tf.Tensor], batch_size: int, seed: Optional[int]) -> tf.data.Dataset:
  data = tf.data.Dataset.from_tensor_slices(features)
  if seed is not None:
    data = data.shuffle(len(features["liked"]), seed=seed)
  return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def run_arm(config: RankingConfig, inputs: Inputs, catalog: Catalog, spm_model: Optional[bytes]) -> Dict[str, Any]:
  """Continuous training over the spans; AUC slices of each span's predictions before training on it."""
  start = time.perf_counter()
  model = ranking.build(config, catalog, spm_model)
  per_span, candidates = [], []
  for index, features in enumerate(inputs.splits.values()):
    if index:  # every span is evaluated before the model sees it
      scores = model.predict(_batches(features, 4096, None), verbose=0)
      per_span.append(evaluation.sliced_auc(features["liked"].numpy(), scores,
                                            evaluation.slice_masks(features["item_segment"].numpy())))
      candidates.append(features["item_id"].numpy())
    model.fit(_batches(features, config.batch_size, config.seed + index),
              epochs=config.epochs if index else config.warmup_epochs, verbose=0)
  lookups, rows = None, None
  if isinstance(model.items, PieceItems):
    pieces = model.items.pieces(tf.constant(np.concatenate(candidates)))
    lookups, rows = float(np.mean(pieces.row_lengths().numpy())), int(model.items.tokenizer.num_rows)
  return {"arm": config.name, **dataclasses.asdict(config), "seconds": time.perf_counter() - start,
          "lookups_per_item": lookups, "embedding_rows": rows, "evaluated_spans": len(per_span),
          "slices": evaluation.mean_over_spans(per_span)}


def _baseline(run: Dict[str, Any], budgets: List[int]) -> str:
  return RankingConfig(representation="random_hash", table_rows=min(budgets),
                       use_history=run["use_history"]).name


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


def markdown(rows: List[Dict[str, Any]], runs: List[Dict[str, Any]], budgets: List[int]) -> str:
  seeds = sorted({r["seed"] for r in runs})
  lines = [f"# Ranking experiments: mean ± std over seeds {seeds}", "",
           f"Baseline for relative AUC: random hashing at {min(budgets):,} rows, same history setting "
           "and seed. Evaluated spans: each by the model trained on the spans before it.", ""]
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


def _write(directory: str, runs: List[Dict[str, Any]], budgets: List[int]) -> None:
  rows = aggregate(runs, budgets)
  with tf.io.gfile.GFile(os.path.join(directory, "report.json"), "w") as f:
    json.dump({"table_budgets": budgets, "arms": rows, "runs": runs}, f, indent=1)
  with tf.io.gfile.GFile(os.path.join(directory, "report.md"), "w") as f:
    f.write(markdown(rows, runs, budgets))
  figures(directory, rows)


def _args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--only", default="", help="comma-separated representations to run (default: all)")
  parser.add_argument("--metadata", default=configs.METADATA_PATH, help="the pipeline's ML Metadata")
  parser.add_argument("--output", default=os.path.join(configs.OUTPUT_ROOT, "experiments"))
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = _args(argv)
  inputs = load_inputs(args.metadata)
  budgets = sorted(inputs.spm_models)
  only = set(filter(None, args.only.split(",")))
  tf.io.gfile.makedirs(args.output)
  progress = os.path.join(args.output, "runs.jsonl")
  done = []
  if tf.io.gfile.exists(progress):  # resume: a crash loses at most the run in flight
    with tf.io.gfile.GFile(progress) as f:
      done = [json.loads(line) for line in f if line.strip()]
  finished = {(r["arm"], r["seed"], r.get("catalog", "v1")) for r in done}
  stability = [dict(representation=r, table_rows=budgets[len(budgets) // 2], use_history=True)
               for r in STABILITY_ARMS] if "v0" in inputs.catalogs else []
  plan = [(arm, seed, "v1") for seed in range(args.seeds) for arm in grid(budgets)]
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
  _write(args.output, done, budgets)
  print(f"Report: {os.path.join(args.output, 'report.md')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
