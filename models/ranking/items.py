"""Item representations: raw item ids of the candidate, the current item and the user's history ->
one vector each (Singh et al. 2023, section 3.3).

`PieceItems` covers random hashing and every SID adaptation: ids -> pieces (in graph, see
models/sid_adaptation) -> rows of one embedding table shared by the three features, summed per
item; the history vector is the mean over its items. Lookups go through
`tfrs.layers.embedding.TPUEmbedding`, so the same layer runs on TPU under TPUStrategy and on CPU/GPU
through its fallback. `DenseItems` is the dense content baseline: the content embedding itself.

Example:
  items = PieceItems(tokenizers.create("spm", 3, 256, spm_model=model), catalog, dim=32,
                     optimizer=tf.tpu.experimental.embedding.Adagrad(0.05))
  candidate, current, history = items(item_id, current_item, history)   # [B, 32] each
Unknown ids (not in the catalog, or 0 for "no item") have no pieces and give a zero vector; random
hashing needs no catalog and hashes any id but 0. A candidate unknown to the catalog can bring its
content instead (`CONTENT_INPUT`): its SID codes from the frozen RQ-VAE for piece representations,
its content embedding for the dense one; a row of -1 codes or a non-finite vector means "no
content", i.e. the zero vector. The current item and the history may have one row for a batch of
candidates (one user's request): the model broadcasts them.
"""

from typing import Optional, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs

from formats.interaction_features import NO_ITEM
from models.ranking.catalog import Catalog, CatalogRows
from models.sid_adaptation import tokenizers

FEATURES = ("candidate", "current", "history")
# With the history split by label: the items the user did not like, pooled apart (`history` is then the
# liked ones), a fourth vector.
OTHER_HISTORY = "other_history"
# For attention over the history (history_attention.py): each history item's own vector, one row per item
# of the flat history ids given, the last vector.
HISTORY_ITEMS = "history_items"
Vectors = Tuple[tf.Tensor, ...]


def _mean_weights(history: tf.RaggedTensor, per_item: tf.RaggedTensor) -> Tuple[tf.RaggedTensor, tf.RaggedTensor]:
  """Pieces of each example's history items, weighted 1/(items with pieces) for a mean over items."""
  batch = history.nrows()
  pieces_per_example = tf.math.unsorted_segment_sum(per_item.row_lengths(), history.value_rowids(), batch)
  items_per_example = tf.math.unsorted_segment_sum(
      tf.cast(per_item.row_lengths() > 0, tf.float32), history.value_rowids(), batch)
  pieces = tf.RaggedTensor.from_row_lengths(per_item.flat_values, pieces_per_example)
  weights = pieces.with_flat_values(tf.gather(1.0 / tf.maximum(items_per_example, 1.0), pieces.value_rowids()))
  return pieces, weights


def _keep_rows(pieces: tf.RaggedTensor, keep: tf.Tensor) -> tf.RaggedTensor:
  """`pieces` with the rows where `keep` is False emptied."""
  flat_keep = tf.repeat(keep, pieces.row_lengths())
  return tf.RaggedTensor.from_row_lengths(tf.boolean_mask(pieces.flat_values, flat_keep),
                                          pieces.row_lengths() * tf.cast(keep, tf.int64))


class PieceItems(tf.keras.layers.Layer):
  """Random hashing and SID adaptations: pieces summed from one TPUEmbedding table."""

  CONTENT_INPUT = "candidate_codes"
  OTHER_HISTORY = OTHER_HISTORY
  HISTORY_ITEMS = HISTORY_ITEMS

  def __init__(self, tokenizer: tokenizers.SidTokenizer, catalog: Catalog, dim: int,
               optimizer: tf.tpu.experimental.embedding.Adagrad, seed: int = 0, split_history: bool = False,
               history_items: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.tokenizer = tokenizer
    self.rows = CatalogRows(catalog.item_ids)
    if tokenizer.uses_codes:
      # The catalog's pieces are computed once: a lookup per item then, not a tokenization.
      catalog_pieces = tokenizer(tf.constant(catalog.item_ids, tf.int64), tf.constant(catalog.codes, tf.int64))
      self._piece_values = tf.constant(catalog_pieces.flat_values)
      self._piece_splits = tf.constant(catalog_pieces.row_splits)
    table = tf.tpu.experimental.embedding.TableConfig(
        vocabulary_size=tokenizer.num_rows, dim=dim, combiner="sum", name="item_pieces",
        initializer=tf.keras.initializers.TruncatedNormal(stddev=dim ** -0.5, seed=seed))
    self._features = FEATURES + ((OTHER_HISTORY,) if split_history else ()) + (
        (HISTORY_ITEMS,) if history_items else ())
    self.embedding = tfrs.layers.embedding.TPUEmbedding(
        {name: tf.tpu.experimental.embedding.FeatureConfig(table=table, name=name) for name in self._features},
        optimizer)

  def pieces(self, ids: tf.Tensor, content_codes: Optional[tf.Tensor] = None) -> tf.RaggedTensor:
    """[n] ids -> [n, (pieces)]; no pieces for unknown ids (every id but NO_ITEM when hashing ids)
    unless `content_codes` [n, L] gives their SID (rows of -1: no content)."""
    ids = tf.cast(ids, tf.int64)
    if not self.tokenizer.uses_codes:
      return _keep_rows(self.tokenizer(ids, None), tf.not_equal(ids, NO_ITEM))
    rows = self.rows(ids)
    known = rows >= 0
    catalog = tf.RaggedTensor.from_row_splits(self._piece_values, self._piece_splits, validate=False)
    pieces = _keep_rows(tf.gather(catalog, tf.maximum(rows, 0)), known)
    if content_codes is None:
      return pieces
    content_codes = tf.cast(content_codes, tf.int64)
    from_content = ~known & tf.reduce_all(content_codes >= 0, axis=1)
    new_items = self.tokenizer(ids, tf.where(from_content[:, None], content_codes, 0))
    return tf.concat([pieces, _keep_rows(new_items, from_content)], axis=1)

  def call(self, candidate: tf.Tensor, current: tf.Tensor, history: tf.RaggedTensor,
           candidate_codes: Optional[tf.Tensor] = None, other_history: Optional[tf.RaggedTensor] = None,
           history_items: Optional[tf.Tensor] = None) -> Vectors:
    inputs = {"candidate": self.pieces(candidate, candidate_codes), "current": self.pieces(current)}
    weights = {"candidate": None, "current": None}
    if history_items is not None:
      inputs[HISTORY_ITEMS], weights[HISTORY_ITEMS] = self.pieces(history_items), None
    for name, items in (("history", history), (OTHER_HISTORY, other_history)):
      if items is not None:
        inputs[name], weights[name] = _mean_weights(items, self.pieces(items.flat_values))
    vectors = self.embedding(inputs, weights=weights)
    return tuple(vectors[name] for name in self._features)


class DenseItems(tf.keras.layers.Layer):
  """The dense content baseline: each item's content embedding (zeros when unknown)."""

  CONTENT_INPUT = "candidate_content"
  OTHER_HISTORY = OTHER_HISTORY
  HISTORY_ITEMS = HISTORY_ITEMS

  def __init__(self, catalog: Catalog, **kwargs):
    super().__init__(trainable=False, **kwargs)
    if catalog.content is None:
      raise ValueError("the dense representation needs the items' content embeddings")
    self.rows = CatalogRows(catalog.item_ids)
    # One extra zero row stands for unknown items.
    self._content = tf.constant(tf.concat([catalog.content, tf.zeros([1, catalog.content.shape[1]])], 0))

  @property
  def content_dim(self) -> int:
    return self._content.shape[1]

  def _vectors(self, ids: tf.Tensor) -> tf.Tensor:
    rows = self.rows(ids)
    return tf.gather(self._content, tf.where(rows >= 0, rows, tf.cast(tf.shape(self._content)[0] - 1, tf.int64)))

  def _mean(self, items: tf.RaggedTensor) -> tf.Tensor:
    """Per row, the mean vector of its known items (zeros when none)."""
    known = tf.cast(self.rows(items.flat_values) >= 0, tf.float32)
    count = tf.math.unsorted_segment_sum(known, items.value_rowids(), items.nrows())
    total = tf.math.unsorted_segment_sum(self._vectors(items.flat_values), items.value_rowids(), items.nrows())
    return total / tf.maximum(count, 1.0)[:, None]

  def call(self, candidate: tf.Tensor, current: tf.Tensor, history: tf.RaggedTensor,
           candidate_content: Optional[tf.Tensor] = None, other_history: Optional[tf.RaggedTensor] = None,
           history_items: Optional[tf.Tensor] = None) -> Vectors:
    candidate_vectors = self._vectors(candidate)
    if candidate_content is not None:
      finite = tf.math.is_finite(candidate_content)
      use = (self.rows(candidate) < 0) & tf.reduce_all(finite, axis=1)
      candidate_vectors = tf.where(use[:, None], tf.where(finite, candidate_content, 0.0), candidate_vectors)
    pooled = tuple(self._mean(items) for items in (history, other_history) if items is not None)
    each = (self._vectors(history_items),) if history_items is not None else ()
    return (candidate_vectors, self._vectors(current)) + pooled + each
