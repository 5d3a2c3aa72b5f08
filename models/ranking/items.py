"""Item representations: raw item ids of the candidate, the current item and the user's history ->
one vector each (Singh et al. 2023, section 3.3).

`PieceItems` covers random hashing and every SID adaptation: ids -> pieces (in graph, see
models/sid_adaptation) -> rows of one embedding table shared by the three features, summed per
item. Lookups go through `tfrs.layers.embedding.TPUEmbedding`, so the same layer runs on TPU under
TPUStrategy and on CPU/GPU through its fallback. `DenseItems` is the dense content baseline: the content
embedding itself.

Each history item gets its own vector, once: the model pools them (`pooled`: the mean, or the means of the
liked and the other items) and its history attention reads them, from the one lookup.

Example:
  items = PieceItems(tokenizers.create("spm", 3, 256, spm_model=model), catalog, dim=32,
                     optimizer=tf.tpu.experimental.embedding.Adagrad(0.05))
  vectors = items(item_id, current_item, history)   # .candidate [B, 32], .history [B, (H), 32]
  user_history = pooled(vectors.history, vectors.known)                  # [B, 32]
Unknown ids (not in the catalog, or 0 for "no item") have no pieces and give a zero vector; random
hashing needs no catalog and hashes any id but 0. A candidate unknown to the catalog can bring its
content instead (`CONTENT_INPUT`): its SID codes from the frozen RQ-VAE for piece representations,
its content embedding for the dense one; a row of -1 codes or a non-finite vector means "no
content", i.e. the zero vector. The current item and the history may have one row for a batch of
candidates (one user's request): the model broadcasts them.
"""

from typing import Callable, NamedTuple, Optional, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs

from formats.interaction_features import NO_ITEM
from models.ranking.catalog import Catalog, CatalogRows
from models.sid_adaptation import tokenizers

class Vectors(NamedTuple):
  """What an item representation gives (history and known: None when asked for no history)."""
  candidate: tf.Tensor                    # [C, d]
  current: tf.Tensor                      # [B, d]
  history: Optional[tf.RaggedTensor]      # [B, (H), d]: each history item's vector
  known: Optional[tf.RaggedTensor]        # [B, (H)]: whether that vector is the item's own (not the zero vector)

  @staticmethod
  def of(candidate: tf.Tensor, current: tf.Tensor, history: Optional[tf.RaggedTensor],
         per_item: Callable[[tf.Tensor], Tuple[tf.Tensor, tf.Tensor]]) -> "Vectors":
    """`per_item(flat history ids)` -> (each item's vector, whether it is known), in `history`'s rows; no
    history vectors without history."""
    if history is None:
      return Vectors(candidate, current, None, None)
    each, known = per_item(history.flat_values)
    return Vectors(candidate, current, history.with_flat_values(each), history.with_flat_values(known))


def pooled(history: tf.RaggedTensor, keep: tf.RaggedTensor) -> tf.Tensor:
  """[B, (H), d] history item vectors -> [B, d], the mean of those `keep` ([B, (H)] booleans) marks; zeros
  where none is marked."""
  weights = tf.cast(keep.flat_values, history.flat_values.dtype)
  rows, batch = history.value_rowids(), history.nrows()
  total = tf.math.unsorted_segment_sum(history.flat_values * weights[:, None], rows, batch)
  return total / tf.maximum(tf.math.unsorted_segment_sum(weights, rows, batch), 1.0)[:, None]


def _keep_rows(pieces: tf.RaggedTensor, keep: tf.Tensor) -> tf.RaggedTensor:
  """`pieces` with the rows where `keep` is False emptied."""
  flat_keep = tf.repeat(keep, pieces.row_lengths())
  return tf.RaggedTensor.from_row_lengths(tf.boolean_mask(pieces.flat_values, flat_keep),
                                          pieces.row_lengths() * tf.cast(keep, tf.int64))


class PieceItems(tf.keras.layers.Layer):
  """Random hashing and SID adaptations: pieces summed from one TPUEmbedding table."""

  CONTENT_INPUT = "candidate_codes"

  def __init__(self, tokenizer: tokenizers.SidTokenizer, catalog: Catalog, dim: int,
               optimizer: tf.tpu.experimental.embedding.Adagrad, seed: int = 0, history: bool = True, **kwargs):
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
    self._features = ("candidate", "current") + (("history",) if history else ())
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

  def call(self, candidate: tf.Tensor, current: tf.Tensor, history: Optional[tf.RaggedTensor] = None,
           candidate_codes: Optional[tf.Tensor] = None) -> Vectors:
    inputs = {"candidate": self.pieces(candidate, candidate_codes), "current": self.pieces(current)}
    if history is not None:
      inputs["history"] = self.pieces(history.flat_values)
    vectors = self.embedding(inputs)
    return Vectors.of(vectors["candidate"], vectors["current"], history,
                      lambda _: (vectors["history"], inputs["history"].row_lengths() > 0))


class DenseItems(tf.keras.layers.Layer):
  """The dense content baseline: each item's content embedding (zeros when unknown)."""

  CONTENT_INPUT = "candidate_content"

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

  def call(self, candidate: tf.Tensor, current: tf.Tensor, history: Optional[tf.RaggedTensor] = None,
           candidate_content: Optional[tf.Tensor] = None) -> Vectors:
    candidate_vectors = self._vectors(candidate)
    if candidate_content is not None:
      finite = tf.math.is_finite(candidate_content)
      use = (self.rows(candidate) < 0) & tf.reduce_all(finite, axis=1)
      candidate_vectors = tf.where(use[:, None], tf.where(finite, candidate_content, 0.0), candidate_vectors)
    return Vectors.of(candidate_vectors, self._vectors(current), history,
                      lambda ids: (self._vectors(ids), self.rows(ids) >= 0))
