"""run_fn of RetrievalTrainer (TFX Trainer's GenericExecutor): one training step of the TIGER model.

The SID refresh trains it from scratch on the backfill; each daily run restores the previous step's weights
and optimizer state and trains one pass on the span, as the ranker does (models/ranking/trainer.py). Given
eval files, a step first scores them with the incoming weights (Recall and NDCG over the whole catalog,
before training: the span is unseen), as the experiments do; the pipelines leave that to the
RetrievalEvaluator, which scores the same model on the same interactions. The model
is exported over the step's catalog, so the items first seen in the span are in its trie, and a
checkpoint is written beside the export for the next step. Both carry the ids of every item trained on so
far (the base model's and this step's): the others are the cold items the Retriever searches apart
(serving.py). `model_run_dir/metrics.json` holds the step's figures.
"""

import json
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf
from absl import logging
from tfx.components.trainer import fn_args_utils

from formats import artifacts, semantic_ids
from formats import interaction_features as fields
from models import distribution
from models.ranking import model as ranking
from models.ranking.trainer import METRICS_FILE, TrainingProgress, checkpoint_dir
from models.ranking.remap import item_counts, window
from models.retrieval import data, evaluation, remap, serving
from models.retrieval.config import RetrievalConfig
from models.retrieval.model import TigerModel, compile_model
from models.retrieval.sid_tokens import SidCatalog, TokenLayout

# Beams per beam-search batch when scoring a span (users x beam width): bounds the memory of the prefix
# logits, which score every candidate token of every beam (4096 x 256 codes: 4 MB a level). 4,096 scored a
# span at 11 ms per interaction, 1,024 at 15, 256 at 34 (2 CPUs).
EVALUATION_BEAMS = 4096


def evaluation_users(beam: int) -> int:
  """Users per beam-search batch."""
  return max(1, EVALUATION_BEAMS // beam)


def load_catalog(custom_config: Dict[str, Any], prefix: str = "") -> SidCatalog:
  """The catalog of the `prefix`ed Semantic IDs (previous_: those a remapped base model was trained on)."""
  artifact = artifacts.SemanticIds()
  artifact.uri = custom_config[f"{prefix}semantic_ids_uri"]
  ids, codes, suffixes = semantic_ids.load(artifact)
  return SidCatalog(ids, codes, suffixes, custom_config[f"{prefix}codebook_size"])


def build(config: RetrievalConfig, layout: TokenLayout) -> TigerModel:
  """A compiled model with its variables and its optimizer's slots created (so a checkpoint restores all)."""
  model = TigerModel(config, layout)
  tokens = tf.zeros([1, 1 + config.history_length * layout.positions], tf.int64)
  model({"encoder_tokens": tokens, "decoder_tokens": tf.zeros([1, layout.positions], tf.int64)})
  compile_model(model, config.learning_rate)
  model.optimizer.build(model.trainable_variables)
  return model


def _checkpoint(model: TigerModel) -> tf.train.Checkpoint:
  return tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def save_checkpoint(model: TigerModel, directory: str, trained_items: np.ndarray) -> None:
  serving.write_settings(directory, model.config, model.layout, trained_items)
  _checkpoint(model).write(os.path.join(directory, "ckpt"))


# Settings that shape the variables: a warm start across a change of any of them is refused.
ARCHITECTURE = ("encoder_layers", "decoder_layers", "heads", "head_dim", "d_model", "mlp_dim", "user_buckets",
                "encoder_input", "history_length", "suffix_size", "prefix_rows",
                "prefix_logits")


def warm_start(model: TigerModel, directory: str, remedy: str) -> np.ndarray:
  """Restores the checkpoint in `directory`; -> the ids of the items it was trained on. A model of another
  architecture or token layout is refused, naming what differs and `remedy`."""
  config, layout, trained_items = serving.read_settings(directory)
  changed = {name: (getattr(config, name), getattr(model.config, name)) for name in ARCHITECTURE
             if getattr(config, name) != getattr(model.config, name)}
  if changed or layout != model.layout:
    raise ValueError(f"cannot warm-start the retrieval model from {directory}: (base, this run) differ in "
                     f"{changed or (layout, model.layout)}; {remedy}")
  _checkpoint(model).read(os.path.join(directory, "ckpt")).assert_existing_objects_matched()
  return trained_items


def _remap(model: TigerModel, catalog: SidCatalog, custom_config: Dict[str, Any], span: Dict[str, np.ndarray]
           ) -> tuple:
  """The restored model's tokens fitted from the previous refresh's SIDs to `catalog`'s (remap.py), each item
  weighted by its interactions before the latest config.remap_examples, which it then trains on (their mask,
  None for all). Returns (that mask, what the remap carried)."""
  keep, before = window(span[fields.TIMESTAMP], model.config.remap_examples)
  interactions, _ = item_counts(catalog.item_ids, span[fields.ITEM_ID][before])
  return keep, remap.remap(model, load_catalog(custom_config, artifacts.PREVIOUS), catalog, interactions,
                           model.config.remap_tokens)


def evaluation_sample(retriever: serving.Retriever, files: List[str]) -> Optional[np.ndarray]:
  """The interactions of `files` a span is scored on (RetrievalConfig.evaluation_examples; None: all)."""
  count = len(ranking.columns(files, {fields.ITEM_ID: data.SPEC[fields.ITEM_ID]})[fields.ITEM_ID])
  return evaluation.sample(count, retriever.evaluation_examples, retriever.seed)


def recommend(retriever: serving.Retriever, files: List[str], k: int, beam: int,
              keep: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
  """Top-k items for every interaction of `files` (its user and history) that `keep` marks (default: all),
  beside its item and slices."""
  spec = data.EVALUATION_SPEC
  top, targets, segments, liked = [], [], [], []
  for batch in ranking.dataset(files, evaluation_users(beam), features=spec, keep=keep):
    items, _ = retriever.top_k(fields.ragged(batch[fields.HISTORY]), batch[fields.USER_ID], tf.constant(k),
                               beam=tf.constant(beam))
    top.append(items.numpy())
    targets.append(batch[fields.ITEM_ID].numpy())
    segments.append(batch[fields.ITEM_SEGMENT].numpy())
    liked.append(batch[fields.LABEL].numpy())
  if not top:
    return {}
  return {"recommended": np.concatenate(top), "targets": np.concatenate(targets),
          "new_items": np.concatenate(segments) == data.NEW_ITEM_SEGMENT, "liked": np.concatenate(liked) == 1}


def evaluate(retriever: serving.Retriever, files: List[str], beam: int, keep: Optional[np.ndarray]
             ) -> Dict[str, Any]:
  """Recall@5/10 and NDCG@5/10 over the whole catalog, on the interactions `keep` marks (None: all):
  overall, on items first seen in the span, and on the interactions the user liked."""
  found = recommend(retriever, files, max(evaluation.CUTOFFS), beam, keep)
  if not found:
    return {"examples": 0}
  masks = {evaluation.OVERALL: np.ones(len(found["targets"]), bool), evaluation.NEW_ITEMS: found["new_items"],
           "liked": found["liked"]}
  result = evaluation.sliced_metrics(found["recommended"], found["targets"], masks)
  result["unretrievable_targets"] = int((retriever.item_tokens.rows(found["targets"]).numpy() < 0).sum())
  result["sampled_from"] = len(keep) if keep is not None else len(found["targets"])
  return result


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  strategy = distribution.strategy()  # before any TensorFlow op: a cluster's is configured at startup
  custom_config = fn_args.custom_config
  config = RetrievalConfig.from_dict(custom_config["retrieval"])
  catalog = load_catalog(custom_config)
  # A SID refresh's remap warm start: the base model was trained on the previous refresh's SIDs.
  remapping = bool(fn_args.base_model and custom_config.get(f"{artifacts.PREVIOUS}semantic_ids_uri"))
  if (remapping or not fn_args.base_model) and catalog.suffixes.max(initial=0) >= config.suffix_size:
    raise ValueError(f"{int((catalog.suffixes >= config.suffix_size).sum())} items share their Semantic ID's codes "
                     f"with {config.suffix_size} others or more: raise the retrieval setting suffix_size above "
                     f"{catalog.suffixes.max()}")
  layout = catalog.layout(config.suffix_size, config.user_buckets)
  span = ranking.columns(fn_args.train_files, {name: fields.COUNTING_SPEC[name]
                                               for name in (fields.ITEM_ID, fields.TIMESTAMP)})
  trained_items, keep, remapped = np.zeros(0, np.int64), None, None
  with distribution.scope(strategy):
    model = build(config, layout)
    if fn_args.base_model:
      trained_items = warm_start(model, checkpoint_dir(fn_args.base_model),
                                 "train the refresh's model from scratch (refresh_warm_start scratch)" if remapping
                                 else "run a SID refresh, which trains a new one")
      model.optimizer.learning_rate.assign(config.step_learning_rate)
      logging.info("Warm-started the retrieval model from %s", fn_args.base_model)
    if remapping:
      keep, remapped = _remap(model, catalog, custom_config, span)
      logging.info("Remapped the retrieval model onto the refresh's Semantic IDs: %s", remapped)
  # The model's halves as the export's graph functions: run eagerly, scoring a span took 1.5 to 1.8x longer.
  retriever = serving.Retriever(*serving.model_functions(model), catalog, layout, config, trained_items)
  unseen = (evaluate(retriever, fn_args.eval_files, config.beam_width,
                     evaluation_sample(retriever, fn_args.eval_files)) if fn_args.eval_files else {})

  epochs = config.epochs if fn_args.base_model else config.warmup_epochs
  if not fn_args.base_model:
    keep = ranking.most_recent(span[fields.TIMESTAMP], config.warmup_examples)
  train = distribution.sharded(data.dataset(fn_args.train_files, retriever.item_tokens, layout, config,
                                            shuffle_seed=config.seed, cache=epochs > 1, keep=keep))
  start, first_step = time.perf_counter(), TrainingProgress(epochs)
  item_ids = span[fields.ITEM_ID] if keep is None else span[fields.ITEM_ID][keep]
  nameable = retriever.item_tokens.rows(item_ids).numpy() >= 0
  examples = int(nameable.sum())
  loss = []
  if examples:
    loss = model.fit(train, epochs=epochs, verbose=0, callbacks=[first_step]).history["loss"]
  else:
    logging.warning("No interactions in %s: the retrieval model is carried over unchanged.", fn_args.train_files)
  seconds = time.perf_counter() - start
  steady = time.perf_counter() - first_step.time if first_step.time else None
  trained_items = np.union1d(trained_items, np.asarray(item_ids)[nameable])
  metrics = {"config": json.loads(config.to_json()), "warm_started_from": fn_args.base_model,
             "remapped": remapped, "train_files": fn_args.train_files, "eval_files": fn_args.eval_files,
             "train_examples": examples,
             "span_examples": len(span[fields.ITEM_ID]),
             "epochs": epochs, "train_batches": first_step.batches, "workers": strategy.num_replicas_in_sync,
             "train_seconds": seconds, "loss": loss,
             "train_examples_per_second": examples * epochs / seconds if examples else None,
             "steady_examples_per_second": ((examples * epochs - config.batch_size) / steady
                                            if steady and examples > config.batch_size else None),
             "catalog_items": len(catalog.item_ids), "unnameable_items": retriever.unnameable,
             "cold_items": int(np.isin(catalog.item_ids, trained_items, invert=True).sum()), "eval": unseen}
  logging.info("Retrieval step: %s", json.dumps(metrics))
  def write(serving_model_dir: str) -> None:
    serving.export(model, catalog, serving_model_dir, trained_items)
    save_checkpoint(model, checkpoint_dir(serving_model_dir), trained_items)

  if not distribution.write_outputs(fn_args.serving_model_dir, write):
    return
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, METRICS_FILE), "w") as f:
    json.dump(metrics, f, indent=1)
