"""TIGER (models/retrieval) as a bench Recommender, trained in plain Keras on in-memory sequences: the same
model, loss, optimizer and constrained beam search as the pipeline's RetrievalTrainer, fed from numpy instead
of the ingestion's tf.Examples.

Semantic IDs for every item of the bench's catalog come from the loop's frozen models (a main-command
output root): each movie's text (title, genres, its most used tags, as SpanExampleGen writes it) embedded by
the SID refresh's content encoder, quantised by its RQ-VAE, collisions numbered in item-id order. They are
computed once for every movie of movies.csv and cached in <output_root>/bench_cache/catalog_sids.npz (delete
it after changing the data).

Example:
  catalog = catalog_sids("outputs", "data/ml-latest-small", item_ids)
  model = Tiger(catalog, RetrievalConfig()).fit(sequences)
  top = model.recommend(histories, k=10, users=user_ids)
"""

import collections
import hashlib
import json
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tfx.utils import path_utils

from components.span_example_gen import features
from formats import movielens
from formats import interaction_features as fields
from formats import semantic_ids
from models.retrieval import data, serving, trainer
from models.retrieval.baselines import Sequences
from models.retrieval.config import RetrievalConfig
from models.retrieval.sid_tokens import SidCatalog
from pipeline import runs, summary

CACHE = os.path.join("bench_cache", "catalog_sids.npz")
EMBED_BATCH = 256
# Settings only decoding and the per-span steps read: a saved warm-up serves any values of them.
AFTER_WARMUP = ("beam_width", "cold_start_share", "epochs", "step_learning_rate")


def _texts(data_root: str, max_tags: int) -> Dict[int, str]:
  tags = collections.defaultdict(list)
  path = os.path.join(data_root, "tags.csv")
  if os.path.exists(path):
    for line in movielens.read_numbered_lines(path):
      tag = movielens.parse_tag(line) if line.number > 1 else None
      if isinstance(tag, movielens.Tag):
        tags[tag.item_id].append(tag)
  texts = {}
  for line in movielens.read_numbered_lines(os.path.join(data_root, "movies.csv")):
    movie = movielens.parse_movie(line) if line.number > 1 else None
    if isinstance(movie, movielens.Movie):
      texts[movie.item_id] = features.content_text(movie, features.aggregate_tags(tags[movie.item_id], max_tags))
  return texts


def catalog_sids(output_root: str, data_root: str, item_ids: np.ndarray) -> SidCatalog:
  """Semantic IDs of `item_ids` from the frozen content encoder and RQ-VAE of the loop at output_root."""
  cache = os.path.join(output_root, CACHE)
  if not os.path.exists(cache):
    _write_sids(output_root, data_root, cache)
  saved = np.load(cache)
  ids = np.sort(np.asarray(item_ids, np.int64))
  rows = np.searchsorted(saved["item_ids"], ids)
  saved_ids = saved["item_ids"]
  missing = ids[(rows >= len(saved_ids)) | (saved_ids[np.minimum(rows, len(saved_ids) - 1)] != ids)]
  if missing.size:
    raise ValueError(f"{missing.size} rated items have no row in {data_root}/movies.csv, e.g. {missing[:5].tolist()}")
  return SidCatalog(ids, saved["codes"][rows], saved["suffixes"][rows], int(saved["codebook_size"]))


def _write_sids(output_root: str, data_root: str, cache: str) -> None:
  """Every movie's SID (movies.csv), collisions numbered over the whole file."""
  config = runs.load_config(output_root)
  outputs = summary.latest_outputs_at(config.metadata_path, config.pipeline_name)
  encoder = tf.saved_model.load(path_utils.serving_model_path(outputs["ContentEmbedder"]["encoder"].uri))
  rqvae = tf.saved_model.load(path_utils.serving_model_path(outputs["RQVAETrainer"]["model"].uri))
  codebook_size = outputs["SemanticIdAssigner"]["semantic_ids"].custom_properties["codebook_size"].int_value
  texts = _texts(data_root, config.max_tags)
  ids = np.array(sorted(texts), np.int64)
  start = time.perf_counter()
  codes = []
  for first in range(0, len(ids), EMBED_BATCH):
    batch = tf.constant([texts[int(i)] for i in ids[first:first + EMBED_BATCH]])
    vectors = encoder.signatures["serving_default"](text=batch)["embedding"]
    codes.append(rqvae.signatures["encode"](embeddings=vectors)["codes"].numpy())
  codes = np.concatenate(codes).astype(np.int64)
  suffixes = np.zeros(len(ids), np.int64)
  groups = collections.defaultdict(list)
  for row, code in enumerate(map(tuple, codes)):
    groups[code].append(row)
  for group in groups.values():
    for row, suffix in semantic_ids.disambiguate(group):
      suffixes[row] = suffix
  print(f"Semantic IDs of {len(ids):,} items from {output_root}'s frozen encoder and RQ-VAE in "
        f"{time.perf_counter() - start:.0f} s (cached in {cache})", flush=True)
  os.makedirs(os.path.dirname(cache), exist_ok=True)
  np.savez(cache, item_ids=ids, codes=codes, suffixes=suffixes, codebook_size=codebook_size)


def examples(sequences: Sequences, history_length: int) -> Dict[str, tf.Tensor]:
  """One next-item example per trained-on interaction, as the ingestion writes them: the user, the items
  before it (at most history_length, oldest first) and the item."""
  users, histories, lengths, targets = [], [], [], []
  for user, items, context in zip(sequences.users, sequences.items, sequences.context):
    for j in range(int(context), len(items)):
      start = max(0, j - history_length)
      users.append(user)
      histories.append(items[start:j])
      lengths.append(j - start)
      targets.append(items[j])
  flat = np.concatenate(histories) if histories else np.zeros(0, np.int64)
  return {fields.USER_ID: tf.constant(np.asarray(users, np.int64)),
          fields.HISTORY: tf.RaggedTensor.from_row_lengths(tf.constant(flat, tf.int64),
                                                           tf.constant(lengths, tf.int64)),
          fields.ITEM_ID: tf.constant(np.asarray(targets, np.int64))}


class Tiger:
  """fit: warmup_epochs from scratch; update: `epochs` at the step learning rate, as the daily runs do.
  With `warmups` (a directory), fit saves the warm-up there, keyed by its settings, catalog and
  sequences, and restores it instead of training when it is there: decoding and step settings
  (AFTER_WARMUP) can then be compared without training again."""

  def __init__(self, catalog: SidCatalog, config: RetrievalConfig, warmups: Optional[str] = None):
    self.config, self.catalog, self.warmups = config, catalog, warmups
    self.layout = catalog.layout(config.suffix_size, config.user_buckets)
    self.model = trainer.build(config, self.layout)
    self.trained_items = np.zeros(0, np.int64)
    self.retriever = self._retriever()
    self.examples_per_second: Optional[float] = None

  def _retriever(self) -> serving.Retriever:
    """Over the catalog, the items not trained on yet cold (as the pipeline's exported model)."""
    return serving.Retriever(self.model.encode, self.model.decode_next, self.catalog, self.layout, self.config,
                             self.trained_items)

  def _train(self, sequences: Sequences, epochs: int, callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> None:
    batch = examples(sequences, self.config.history_length)
    count = int(batch[fields.ITEM_ID].shape[0])
    if not count:
      return
    # Warm from now on (callbacks that score between epochs see them so).
    self.trained_items = np.union1d(self.trained_items, batch[fields.ITEM_ID].numpy())
    self.retriever = self._retriever()
    # Batches of shuffled example indices gathered from the in-memory tensors: slicing ragged examples one by
    # one and batching them again was 3x slower than training.
    gather = lambda rows: {name: tf.gather(values, rows) for name, values in batch.items()}
    dataset = (tf.data.Dataset.range(count).shuffle(count, seed=self.config.seed)
               .batch(self.config.batch_size)
               .map(lambda rows: data.pairs(gather(rows), self.retriever.item_tokens, self.layout,
                                            self.config.history_length), num_parallel_calls=tf.data.AUTOTUNE)
               .filter(lambda inputs, targets: tf.shape(targets)[0] > 0).prefetch(tf.data.AUTOTUNE))
    start = time.perf_counter()
    self.model.fit(dataset, epochs=epochs, verbose=0, callbacks=list(callbacks))
    self.examples_per_second = count * epochs / (time.perf_counter() - start)

  def _warmup_dir(self, sequences: Sequences) -> Optional[str]:
    if not self.warmups:
      return None
    digest = hashlib.sha256(json.dumps({name: value for name, value in json.loads(self.config.to_json()).items()
                                        if name not in AFTER_WARMUP}, sort_keys=True).encode())
    for array in [self.catalog.item_ids, self.catalog.sequences, sequences.users, sequences.context,
                  *sequences.items]:
      digest.update(np.ascontiguousarray(array).tobytes())
    return os.path.join(self.warmups, digest.hexdigest()[:16])

  def fit(self, sequences: Sequences, callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> "Tiger":
    directory = self._warmup_dir(sequences)
    if directory and os.path.exists(os.path.join(directory, serving.TRAINED_ITEMS_FILE)):
      self.trained_items = trainer.warm_start(self.model, directory)
      self.retriever = self._retriever()
      print(f"    tiger: the warm-up restored from {directory}", flush=True)
      return self
    self._train(sequences, self.config.warmup_epochs, callbacks)
    if directory:
      trainer.save_checkpoint(self.model, directory, self.trained_items)
    return self

  def update(self, sequences: Sequences) -> "Tiger":
    self.model.optimizer.learning_rate.assign(self.config.step_learning_rate)
    self._train(sequences, self.config.epochs)
    return self

  def recommend(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool = True,
                users: Optional[np.ndarray] = None) -> np.ndarray:
    if not exclude_history:
      raise ValueError("TIGER's beam search always leaves the history out")
    users = np.zeros(len(histories), np.int64) if users is None else np.asarray(users, np.int64)
    found: List[np.ndarray] = []
    beam = max(k, self.config.beam_width)
    step = trainer.evaluation_users(beam)
    for first in range(0, len(histories), step):
      items, _ = self.retriever.top_k(
          tf.ragged.constant([np.asarray(h).tolist() for h in histories[first:first + step]], tf.int64,
                             ragged_rank=1),
          tf.constant(users[first:first + step]), tf.constant(k), beam=tf.constant(beam))
      found.append(items.numpy())
    return np.concatenate(found) if found else np.zeros([0, k], np.int64)
