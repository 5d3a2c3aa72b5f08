"""run_fn of RankingTrainer (the TFX Trainer's GenericExecutor): one continuous-training step.

Builds the model of `custom_config['ranking']` over the frozen catalog (Semantic IDs, content
embeddings) and vocabulary, restores the previous step's weights and optimizer state when the
Trainer has a base model, scores the evaluation span with it, then trains on the step's span(s) and
exports the serving SavedModel (with the frozen RQ-VAE and content encoder, see signatures.py) plus a
checkpoint for the next step. In a daily run the evaluation span is the span about to be trained on, so
the score is the incoming model's on data it has never seen, as TFMA's Evaluator computes it in the same
run for blessing; except on the span's new items, which the trainer scores through the SIDs the run just
gave them (as served with their content) and TFMA through the exported model's catalog, which lacks them.
`model_run_dir/metrics.json` holds the step's own figures: examples trained on, seconds, and that AUC
overall and per item segment.
"""

import json
import os
import time
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf
from absl import logging
from tfx.components.trainer import fn_args_utils
from tfx.utils import path_utils

from formats import artifacts, feature_state, item_embeddings, progress, rqvae_model, semantic_ids, sid_vocabulary
from formats import interaction_features as fields
from formats.artifacts import PREVIOUS
from models import distribution
from models.ranking import baselines, evaluation, remap
from models.ranking import model as ranking
from models.ranking import signatures
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig

METRICS_FILE = "metrics.json"
ITEM_LIKE_RATE = "item_like_rate"  # the baseline's AUC slices, under metrics.json's "eval"
# Under metrics.json's "eval": AUC on the candidates whose SID came from a refresh that never saw them, and the rest.
SID_STALENESS, STALE, REFRESHED = "sid_staleness", "stale", "refreshed"
CHECKPOINT_DIR = "checkpoint"


def _artifact(artifact_type, uri: str):
  artifact = artifact_type()
  artifact.uri = uri
  return artifact


def load_catalog(custom_config: Dict[str, Any], with_content: bool, prefix: str = "") -> Catalog:
  """The catalog of the `prefix`ed Semantic IDs and vocabulary (previous_: those a remapped base model had)."""
  vocabulary = sid_vocabulary.settings(_artifact(artifacts.SidVocabulary, custom_config[f"{prefix}vocabulary_uri"]))
  ids, codes, _ = semantic_ids.load(_artifact(artifacts.SemanticIds, custom_config[f"{prefix}semantic_ids_uri"]))
  content = None
  if with_content:
    embedding_ids, content = item_embeddings.load(_artifact(artifacts.ItemEmbeddings, custom_config["embeddings_uri"]))
    if not np.array_equal(embedding_ids, ids):
      raise ValueError("Semantic IDs and content embeddings cover different items")
  return Catalog(ids, codes, vocabulary["codebook_size"], content)


def _frozen_model(uri: Optional[str]) -> Optional[tf.Module]:
  return tf.saved_model.load(path_utils.serving_model_path(uri)) if uri else None


def _counters(custom_config: Dict[str, Any]) -> Optional[feature_state.CounterSnapshot]:
  if not custom_config.get("feature_state_uri"):
    return None
  state = _artifact(artifacts.FeatureState, custom_config["feature_state_uri"])
  feature_state.set_properties(state, **custom_config["feature_state_properties"])
  return feature_state.counter_snapshot(state)


class TrainingProgress(tf.keras.callbacks.Callback):
  """Remembers when fit's first step (the tracing one) ended and how many batches it trained on, and
  reports each epoch's progress every `every` batches and at its end (formats/progress.py)."""

  def __init__(self, epochs: int, every: int = 1000):
    super().__init__()
    self.time: Optional[float] = None
    self.batches = 0
    self._epochs, self._every, self._epoch = epochs, every, 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch + 1

  def on_train_batch_end(self, batch, logs=None):
    if self.time is None:
      self.time = time.perf_counter()
    self.batches += 1
    if (batch + 1) % self._every == 0:
      progress.report(f"epoch {self._epoch} of {self._epochs}: {batch + 1:,} batches")

  def on_epoch_end(self, epoch, logs=None):
    progress.report(f"epoch {epoch + 1} of {self._epochs} done, loss {(logs or {}).get('loss', float('nan')):.4f}")


def checkpoint_dir(serving_model_dir: str) -> str:
  return os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), CHECKPOINT_DIR)


def _evaluate(model: ranking.RankingModel, catalog: Catalog, files, refresh_items: Optional[np.ndarray]
              ) -> Dict[str, Any]:
  """AUC slices on the evaluation span, the item like-rate baseline's on the same interactions, how many
  candidates the catalog does not know (they are scored from the current item and history alone), and with
  `refresh_items` (those the SID refresh's RQ-VAE learned from) the AUC on candidates whose SID came from a
  refresh that never saw them (`stale`) beside the AUC on the others (`refreshed`)."""
  labels, scores, like_rates, segments, candidates = [], [], [], [], []
  for batch in ranking.dataset(files, 4096, features=fields.EVALUATION_SPEC):
    labels.append(batch[fields.LABEL].numpy())
    scores.append(model(batch).numpy())
    like_rates.append(baselines.item_like_rate(batch))
    segments.append(batch[fields.ITEM_SEGMENT].numpy())
    candidates.append(batch[fields.ITEM_ID].numpy())
  if not labels:
    return {"examples": 0}
  labels, scores = np.concatenate(labels), np.concatenate(scores)
  masks = evaluation.slice_masks(np.concatenate(segments))
  result = evaluation.sliced_auc(labels, scores, masks)
  result[ITEM_LIKE_RATE] = evaluation.sliced_auc(labels, np.concatenate(like_rates), masks)
  candidates = np.concatenate(candidates)
  result["unknown_candidates"] = int((~np.isin(candidates, catalog.item_ids)).sum())
  if refresh_items is not None:
    refreshed = np.isin(candidates, refresh_items)
    result[SID_STALENESS] = evaluation.sliced_auc(labels, scores, {
        STALE: np.isin(candidates, catalog.item_ids) & ~refreshed, REFRESHED: refreshed})
  return result


def _spm_model(config: RankingConfig, custom_config: Dict[str, Any], prefix: str = "") -> Optional[bytes]:
  if config.representation != "spm":
    return None
  return sid_vocabulary.load_model(_artifact(artifacts.SidVocabulary, custom_config[f"{prefix}vocabulary_uri"]),
                                   config.table_rows)


def _remap(model: ranking.RankingModel, catalog: Catalog, custom_config: Dict[str, Any], base_model: str,
           span: Dict[str, np.ndarray]) -> tuple:
  """The base model, trained on the previous refresh's SIDs, remapped into `model`; the SID-cluster counts
  re-keyed from the interactions before the latest config.remap_examples, which it then trains on (their
  mask). Returns (that mask or None for all, what the remap carried)."""
  config = model.config
  old = ranking.build(config, load_catalog(custom_config, False, PREVIOUS), _spm_model(config, custom_config, PREVIOUS))
  ranking.warm_start(old, checkpoint_dir(base_model))
  keep, before = remap.window(span[fields.TIMESTAMP], config.remap_examples)
  counts = remap.item_counts(catalog.item_ids, span[fields.ITEM_ID][before], span[fields.LABEL][before])
  report = remap.remap(old, model, catalog.item_ids, *counts, carry_pieces=config.remap_pieces == "copy")
  return keep, report


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  strategy = distribution.strategy()  # before any TensorFlow op: a cluster's is configured at startup
  custom_config = fn_args.custom_config
  config = RankingConfig.from_dict(custom_config["ranking"])
  catalog = load_catalog(custom_config, with_content=config.representation == "dense")
  # Without SIDs (dense content, random hashing) no variable's meaning hangs on them: a plain warm start.
  remapping = bool(fn_args.base_model and custom_config.get(f"{PREVIOUS}semantic_ids_uri") and config.uses_sids)
  span = ranking.columns(fn_args.train_files, fields.COUNTING_SPEC)
  keep, remapped = None, None
  with distribution.scope(strategy):
    model = ranking.build(config, catalog, _spm_model(config, custom_config))
    if remapping:
      keep, remapped = _remap(model, catalog, custom_config, fn_args.base_model, span)
      logging.info("Remapped from %s: %s", fn_args.base_model, remapped)
    elif fn_args.base_model:
      ranking.warm_start(model, checkpoint_dir(fn_args.base_model))
      logging.info("Warm-started from %s", fn_args.base_model)
    if fn_args.base_model:
      ranking.use_step_learning_rates(model)

  sid_encoder = custom_config.get("sid_encoder_uri")
  refresh_items = rqvae_model.train_item_ids(sid_encoder) if sid_encoder else None
  unseen = _evaluate(model, catalog, fn_args.eval_files, refresh_items)  # before training: the span is unseen
  epochs = config.epochs if fn_args.base_model else config.warmup_epochs
  if not fn_args.base_model:
    keep = ranking.most_recent(span[fields.TIMESTAMP], config.warmup_examples)
  examples = len(span[fields.LABEL]) if keep is None else int(keep.sum())
  train = distribution.sharded(ranking.dataset(
      fn_args.train_files, config.batch_size, shuffle_seed=config.seed, cache=epochs > 1,
      extra=None if fn_args.base_model else model.warmup_features(span, keep), keep=keep))
  start, first_step = time.perf_counter(), TrainingProgress(epochs)
  if examples:
    model.fit(train, epochs=epochs, verbose=0, callbacks=[first_step])
  else:
    logging.warning("No interactions in %s: the model is carried over unchanged.", fn_args.train_files)
  seconds = time.perf_counter() - start
  steady_seconds = time.perf_counter() - first_step.time if first_step.time else None
  # A remapped model's counts hold the interactions before those it trained on.
  model.count(span if not remapping or keep is None else {name: column[keep] for name, column in span.items()})
  metrics = {"config": json.loads(config.to_json()), "warm_started_from": fn_args.base_model,
             "remapped": remapped,
             "train_files": fn_args.train_files, "eval_files": fn_args.eval_files,
             "missing_splits": custom_config.get("missing_splits", []),
             "train_examples": examples, "span_examples": len(span[fields.LABEL]), "train_seconds": seconds,
             "epochs": epochs, "train_batches": first_step.batches, "workers": strategy.num_replicas_in_sync,
             "train_examples_per_second": examples * epochs / seconds if examples else None,
             # After the first step, which traces the step function: throughput as a long run sees it.
             "steady_examples_per_second": ((examples * epochs - config.batch_size) / steady_seconds
                                            if steady_seconds and examples > config.batch_size else None),
             "eval": unseen}
  logging.info("Ranking step: %s", json.dumps(metrics))

  def write(serving_model_dir: str) -> None:
    signatures.export(model, serving_model_dir, sample_items=catalog.item_ids[:8],
                      sid_encoder=_frozen_model(custom_config.get("sid_encoder_uri")),
                      counters=_counters(custom_config))
    ranking.save_checkpoint(model, checkpoint_dir(serving_model_dir))

  if not distribution.write_outputs(fn_args.serving_model_dir, write):
    return
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, METRICS_FILE), "w") as f:
    json.dump(metrics, f, indent=1)
