"""The item catalog the ranking model carries in its graph: item id -> SID codes and content vector.

Built from the frozen SemanticIds and ItemEmbeddings artifacts, so the exported model turns raw item
ids into SIDs itself and a new item needs only a catalog row (SIDs from the frozen RQ-VAE), never
retraining of the tokenizer or the RQ-VAE.
"""

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from formats.interaction_features import NO_ITEM


@dataclasses.dataclass
class Catalog:
  item_ids: np.ndarray            # [N] int64
  codes: np.ndarray               # [N, L] int64 SID codes (the collision suffix is not used)
  codebook_size: int              # K: codes are in [0, K)
  content: Optional[np.ndarray] = None  # [N, D] float32 content embeddings, for the dense arm

  def __post_init__(self):
    if len(np.unique(self.item_ids)) != len(self.item_ids):
      raise ValueError("the item catalog has duplicate item ids")
    if len(self.codes) != len(self.item_ids) or (self.content is not None
                                                 and len(self.content) != len(self.item_ids)):
      raise ValueError("item ids, SID codes and content vectors must have one row per item")


class CatalogRows(tf.keras.layers.Layer):
  """item ids (any shape) -> catalog row, -1 for ids not in the catalog and for NO_ITEM."""

  def __init__(self, item_ids: np.ndarray, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self._table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(item_ids, tf.int64),
                                            tf.range(len(item_ids), dtype=tf.int64)), default_value=-1)

  def call(self, ids: tf.Tensor) -> tf.Tensor:
    rows = self._table.lookup(tf.cast(ids, tf.int64))
    return tf.where(tf.equal(ids, NO_ITEM), tf.constant(-1, tf.int64), rows)


class CatalogCodes(tf.keras.layers.Layer):
  """item ids [n] -> their SID codes [n, L]; rows of -1 for items without codes. An item unknown to the
  catalog takes its row of `content_codes` [n, L] when given (its SID from the frozen RQ-VAE; -1: none)."""

  def __init__(self, catalog: Catalog, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self.rows = CatalogRows(catalog.item_ids)
    self._codes = tf.constant(catalog.codes, tf.int64)

  def call(self, ids: tf.Tensor, content_codes: Optional[tf.Tensor] = None) -> tf.Tensor:
    rows = self.rows(ids)
    known = rows >= 0
    codes = tf.gather(self._codes, tf.maximum(rows, 0))
    if content_codes is not None:
      content = tf.cast(content_codes, tf.int64)
      from_content = ~known & tf.reduce_all(content >= 0, axis=1)
      codes, known = tf.where(from_content[:, None], content, codes), known | from_content
    return tf.where(known[:, None], codes, tf.constant(-1, tf.int64))
