"""Retrieval over the whole catalog with a TIGER model: the catalog's trie and constrained beam search in the
graph, and the exported SavedModel.

`Retriever` joins a model's `encode` / `decode` functions (a live TigerModel's, or a loaded SavedModel's)
to a catalog: so the SavedModel of a model trained through span N-1 can be given span N's catalog, its new
items included, without retraining (components/recommender_pusher does that). The exported SavedModel has:

  retrieve   history int64 [H] (oldest first, may be empty), user_id int64 [] (0: none), k int64 [] (> 0)
             -> items int64 [n], scores float32 [n] (log-probability of the item's Semantic ID), best
             first; n = min(k, catalog items not in the history); history items never come back; up to
             ceil(cold_start_share x k) of them are items the model was not trained on (Retriever)
  encode / decode  the model's two halves as functions over tokens (for Retriever over a new catalog)

Example:
  export(model, catalog, "serving/sid_retrieval/1", trained_items=item_ids_of_the_training_targets)
  retrieve = tf.saved_model.load("serving/sid_retrieval/1").signatures["retrieve"]
  retrieve(history=tf.constant([1, 2], tf.int64), user_id=tf.constant(7, tf.int64), k=tf.constant(10, tf.int64))
"""

import dataclasses
import functools
import json
import os
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf
from tf_keras.src.saving.legacy.saved_model import utils as keras_saving

from models.retrieval.beam_search import TrieTensors, constrained_beam_search
from models.retrieval.config import RetrievalConfig
from models.retrieval.model import TigerModel
from models.retrieval.sid_tokens import BOS, ItemTokens, SidCatalog, TokenLayout, encoder_tokens
from models.retrieval.trie import PrefixTrie

RETRIEVE = "retrieve"
HISTORY, USER_ID, K = "history", "user_id", "k"
ITEMS, SCORES = "items", "scores"
SETTINGS_FILE = "retrieval.json"  # the model's config and token layout
TRAINED_ITEMS_FILE = "trained_items.npy"  # ids of the items the model was trained on as targets
EXTRA = "assets.extra"  # where a SavedModel holds SETTINGS_FILE

_graph_function = functools.partial(tf.function, autograph=False)


class Retriever(tf.Module):
  """top_k(history, user_ids, k): catalog items by constrained beam search (beam_search.py).

  With `trained_items` (the ids the model was trained on as targets), the other catalog items are cold
  (TIGER, section 4.3): their Semantic IDs were never a target, so the decoder gives them little
  probability and one search over the whole catalog would never return them. They get a trie and a beam
  search of their own, and up to ceil(cold_start_share x k) of the k items are the best cold ones; the
  answer is then ordered by log-probability. Without `trained_items` every item is searched together."""

  def __init__(self, encode: Callable, decode: Callable, catalog: SidCatalog, layout: TokenLayout,
               config: RetrievalConfig, trained_items: Optional[np.ndarray] = None):
    super().__init__()
    self.encode, self.decode = encode, decode
    self.layout, self.history_length, self.beam_width = layout, config.history_length, config.beam_width
    self.cold_start_share = config.cold_start_share
    self.evaluation_examples, self.seed = config.evaluation_examples, config.seed
    self.item_tokens = ItemTokens(catalog, layout)
    retrievable = catalog.retrievable(layout.suffix_size)
    self.unnameable = int((~retrievable).sum())  # items whose collision suffix is beyond the model's
    trained = (np.ones(len(catalog.item_ids), bool) if trained_items is None
               else np.isin(catalog.item_ids, np.asarray(trained_items, np.int64)))
    self.cold_items = int((retrievable & ~trained).sum())
    token_rows = np.cumsum(retrievable) - 1  # each retrievable catalog item's row in ItemTokens
    warm, cold = retrievable & trained, retrievable & ~trained
    self.trie = self._trie(catalog, warm, token_rows) if warm.any() else None
    self.cold_trie = self._trie(catalog, cold, token_rows) if self.cold_items and self.cold_start_share else None

  def _trie(self, catalog: SidCatalog, rows: np.ndarray, token_rows: np.ndarray) -> TrieTensors:
    """The trie of the catalog's `rows`, its leaves their rows in ItemTokens."""
    trie = PrefixTrie.build(catalog.sequences[rows])
    leaves, leaf = np.full_like(trie.leaf_rows, -1), trie.leaf_rows >= 0
    leaves[leaf] = token_rows[rows][trie.leaf_rows[leaf]]
    return TrieTensors(dataclasses.replace(trie, leaf_rows=leaves), self.layout.offsets)

  def top_k(self, history: tf.RaggedTensor, user_ids: tf.Tensor, k: tf.Tensor, beam: tf.Tensor = None
            ) -> Tuple[tf.Tensor, tf.Tensor]:
    """-> (item ids [U, k], scores [U, k]); ids -1 and scores -inf where fewer than k items remain."""
    history = tf.cast(history, tf.int64)
    users = tf.shape(user_ids)[0]
    enc = encoder_tokens(self.item_tokens, self.layout, history, user_ids, self.history_length)
    memory = self.encode(enc)

    def next_log_probs(prefixes: tf.Tensor, position: int) -> tf.Tensor:
      width = tf.shape(prefixes)[0] // users
      decoder = tf.concat([tf.fill([tf.shape(prefixes)[0], 1], tf.constant(BOS, tf.int64)), prefixes], axis=1)
      logits = self.decode(tf.repeat(memory, width, axis=0), tf.repeat(enc, width, axis=0), decoder)[:, -1]
      offset, size = self.layout.offsets[position], self.layout.sizes[position]
      return tf.nn.log_softmax(logits[:, offset:offset + size])

    k = tf.cast(k, tf.int32)
    exclude = self.item_tokens.rows(history).to_tensor(-1)
    if beam is None:
      beam = tf.maximum(k, self.beam_width) + tf.shape(exclude)[1]
    rows, scores = tf.zeros([users, 0], tf.int64), tf.zeros([users, 0], tf.float32)
    if self.trie is not None:
      rows, scores = constrained_beam_search(next_log_probs, self.trie, users, beam, k, exclude)
    if self.cold_trie is not None:
      slots = tf.cast(tf.math.ceil(self.cold_start_share * tf.cast(k, tf.float32)), tf.int32)
      # A beam of the slots, widened by the history, whose items the last step may remove.
      cold_rows, cold_scores = constrained_beam_search(next_log_probs, self.cold_trie, users,
                                                       slots + tf.shape(exclude)[1], slots, exclude)
      rows, scores = _merge(rows, scores, cold_rows, cold_scores, k)
    missing = k - tf.shape(rows)[1]  # fewer candidates than k in the whole catalog
    rows = tf.pad(rows, [[0, 0], [0, missing]], constant_values=-1)
    scores = tf.pad(scores, [[0, 0], [0, missing]], constant_values=-np.inf)
    return tf.where(rows >= 0, tf.gather(self.item_tokens.item_ids, tf.maximum(rows, 0)), -1), scores

  def retrieve(self, history: tf.Tensor, user_id: tf.Tensor, k: tf.Tensor):
    """One user's request (the `retrieve` signature)."""
    tf.debugging.assert_positive(k, message="k must be > 0")
    items, scores = self.top_k(tf.RaggedTensor.from_tensor(history[None]), user_id[None], k)
    found = items[0] >= 0
    return {ITEMS: tf.boolean_mask(items[0], found), SCORES: tf.boolean_mask(scores[0], found)}


def _merge(rows: tf.Tensor, scores: tf.Tensor, cold_rows: tf.Tensor, cold_scores: tf.Tensor, k: tf.Tensor
           ) -> Tuple[tf.Tensor, tf.Tensor]:
  """The best k of the trained items' [U, n] and the cold items' [U, c] answers (-1 / -inf: none), the
  cold ones all kept: each user's trained items beyond k minus its cold items found make way."""
  cold_found = tf.reduce_sum(tf.cast(cold_rows >= 0, tf.int32), axis=1, keepdims=True)
  kept = tf.range(tf.shape(rows)[1])[None, :] < k - cold_found
  scores = tf.concat([tf.where(kept, scores, -np.inf), cold_scores], axis=1)
  rows = tf.concat([tf.where(kept, rows, -1), cold_rows], axis=1)
  best = tf.math.top_k(scores, tf.minimum(k, tf.shape(scores)[1]))
  return tf.gather(rows, best.indices, batch_dims=1), best.values


REQUEST = [tf.TensorSpec([None], tf.int64, name=HISTORY), tf.TensorSpec([], tf.int64, name=USER_ID),
           tf.TensorSpec([], tf.int64, name=K)]


def model_functions(model: TigerModel) -> Tuple[tf.types.experimental.GenericFunction, ...]:
  """The model's halves as tf.functions over tokens, saved with the SavedModel."""
  tokens = tf.TensorSpec([None, None], tf.int64)
  memory = tf.TensorSpec([None, None, model.config.d_model], tf.float32)
  encode = _graph_function(lambda encoder_tokens: model.encode(encoder_tokens), input_signature=[tokens])
  decode = _graph_function(model.decode_next, input_signature=[memory, tokens, tokens])
  return encode, decode


def export(model: TigerModel, catalog: SidCatalog, export_dir: str, trained_items: np.ndarray) -> None:
  """Writes the serving SavedModel of `model` over `catalog` (with the model's config and the items it was
  trained on in assets.extra)."""
  encode, decode = model_functions(model)
  retriever = Retriever(encode, decode, catalog, model.layout, model.config, trained_items)
  retriever.model = model
  signature = _graph_function(retriever.retrieve, input_signature=REQUEST).get_concrete_function()
  # Without Keras's traces of every layer's call, which nothing loads (as models/ranking/signatures.py).
  with keras_saving.keras_option_scope(save_traces=False):
    tf.saved_model.save(retriever, export_dir, signatures={RETRIEVE: signature})
  write_settings(os.path.join(export_dir, EXTRA), model.config, model.layout, trained_items)


def write_settings(directory: str, config: RetrievalConfig, layout: TokenLayout, trained_items: np.ndarray) -> None:
  """SETTINGS_FILE and TRAINED_ITEMS_FILE in `directory` (an export's assets.extra, or a checkpoint's)."""
  tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(os.path.join(directory, SETTINGS_FILE), "w") as f:
    json.dump({"config": json.loads(config.to_json()), "layout": vars(layout)}, f)
  with tf.io.gfile.GFile(os.path.join(directory, TRAINED_ITEMS_FILE), "wb") as f:
    np.save(f, np.unique(np.asarray(trained_items, np.int64)))


def read_settings(directory: str) -> Tuple[RetrievalConfig, TokenLayout, np.ndarray]:
  """-> (config, layout, ids of the items trained on) written by write_settings."""
  with tf.io.gfile.GFile(os.path.join(directory, SETTINGS_FILE)) as f:
    settings = json.load(f)
  trained_path = os.path.join(directory, TRAINED_ITEMS_FILE)
  if not tf.io.gfile.exists(trained_path):
    raise ValueError(f"{trained_path} is missing: this retrieval model was written before models carried the "
                     "items they were trained on; run a SID refresh, which trains a new one")
  with tf.io.gfile.GFile(trained_path, "rb") as f:
    trained_items = np.load(f)
  return RetrievalConfig.from_dict(settings["config"]), TokenLayout(**settings["layout"]), trained_items


def load(export_dir: str, catalog: SidCatalog) -> Retriever:
  """A Retriever over `catalog` with the encode / decode functions of the SavedModel at export_dir; the
  catalog's items it was not trained on are its cold items."""
  config, layout, trained_items = read_settings(os.path.join(export_dir, EXTRA))
  loaded = tf.saved_model.load(export_dir)
  retriever = Retriever(loaded.encode, loaded.decode, catalog, layout, config, trained_items)
  retriever.loaded = loaded  # keeps the functions' variables alive, and saves them with a new export
  return retriever
