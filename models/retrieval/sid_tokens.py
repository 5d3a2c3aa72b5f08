"""TIGER's token vocabulary over Semantic IDs, and an item catalog as token sequences.

An item is P = L + 1 tokens: its L codes (coarse to fine) and its collision suffix, each position with a
vocabulary of its own (Rajput et al. 2023, section 3.1), so code 5 at level 1 and code 5 at level 2 are
different tokens. A user is one hashed token. Token ids:

  0 PAD, 1 BOS (the decoder's start), then position 0's K codes, ..., position L-1's K codes, the S
  suffixes, then the user buckets.

Example:
  layout = TokenLayout(num_levels=3, codebook_size=256, suffix_size=32, user_buckets=2000)
  layout.token(position=1, code=5)   # 2 + 256 + 5
  catalog = SidCatalog(item_ids, codes, suffixes, codebook_size=256)   # from the SemanticIds artifact
  tokens = ItemTokens(catalog, layout)   # tf: item ids -> [..., P] tokens (PAD rows for unknown ids)
"""

import dataclasses
from typing import List, Tuple

import numpy as np
import tensorflow as tf

from formats.interaction_features import NO_ITEM, NO_USER

PAD, BOS = 0, 1


@dataclasses.dataclass(frozen=True)
class TokenLayout:
  num_levels: int
  codebook_size: int
  suffix_size: int
  user_buckets: int

  @property
  def positions(self) -> int:
    """Tokens per item: L codes and the suffix."""
    return self.num_levels + 1

  @property
  def sizes(self) -> List[int]:
    return [self.codebook_size] * self.num_levels + [self.suffix_size]

  @property
  def offsets(self) -> List[int]:
    """Token id of code 0 at each position."""
    return [2 + int(v) for v in np.cumsum([0] + self.sizes[:-1])]

  @property
  def user_offset(self) -> int:
    return 2 + sum(self.sizes)

  @property
  def vocabulary_size(self) -> int:
    return self.user_offset + self.user_buckets

  def token(self, position: int, code: int) -> int:
    return self.offsets[position] + code

  def user_tokens(self, user_ids: tf.Tensor) -> tf.Tensor:
    """Hashed user tokens (Fingerprint64 of the id's decimal string); PAD without buckets or for NO_USER."""
    if not self.user_buckets:
      return tf.fill(tf.shape(user_ids), tf.constant(PAD, tf.int64))
    buckets = tf.strings.to_hash_bucket_fast(tf.strings.as_string(user_ids), self.user_buckets)
    return tf.where(tf.equal(user_ids, NO_USER), tf.constant(PAD, tf.int64), self.user_offset + buckets)


@dataclasses.dataclass
class SidCatalog:
  """Items and their Semantic IDs, as the SemanticIds artifact holds them (formats/semantic_ids.py)."""
  item_ids: np.ndarray   # [N] int64
  codes: np.ndarray      # [N, L] int64
  suffixes: np.ndarray   # [N] int64
  codebook_size: int

  def __post_init__(self):
    self.item_ids = np.asarray(self.item_ids, np.int64)
    self.codes = np.asarray(self.codes, np.int64).reshape(len(self.item_ids), -1)
    self.suffixes = np.asarray(self.suffixes, np.int64)
    if len(np.unique(self.item_ids)) != len(self.item_ids):
      raise ValueError("the Semantic ID catalog has duplicate item ids")
    if len(self.suffixes) != len(self.item_ids):
      raise ValueError("item ids, codes and suffixes must have one row per item")
    if len(np.unique(self.sequences, axis=0)) != len(self.item_ids):
      raise ValueError("two items share their codes and suffix: Semantic IDs must be unique")

  @classmethod
  def from_codes(cls, item_ids: np.ndarray, codes: np.ndarray, codebook_size: int) -> "SidCatalog":
    """Items that share their codes get suffixes 0, 1, ... in the order of their ids (as the assigner's)."""
    order = np.lexsort((item_ids,) + tuple(np.asarray(codes).T[::-1]))
    ordered = np.asarray(codes)[order]
    first = np.ones(len(order), bool)
    first[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    starts = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    suffixes = np.empty(len(order), np.int64)
    suffixes[order] = np.arange(len(order)) - starts
    return cls(item_ids, codes, suffixes, codebook_size)

  @property
  def num_levels(self) -> int:
    return self.codes.shape[1]

  @property
  def sequences(self) -> np.ndarray:
    """[N, L + 1] per position codes: the L codes, then the suffix."""
    return np.concatenate([self.codes, self.suffixes[:, None]], axis=1)

  def retrievable(self, suffix_size: int) -> np.ndarray:
    """[N] bool: items a model with `suffix_size` suffix tokens can name."""
    return self.suffixes < suffix_size

  def layout(self, suffix_size: int, user_buckets: int) -> TokenLayout:
    return TokenLayout(self.num_levels, self.codebook_size, suffix_size, user_buckets)


class ItemTokens(tf.Module):
  """Item ids -> their P tokens (PAD tokens for ids outside the catalog, NO_ITEM and unnameable items)."""

  def __init__(self, catalog: SidCatalog, layout: TokenLayout):
    super().__init__()
    if catalog.num_levels != layout.num_levels or catalog.codebook_size != layout.codebook_size:
      raise ValueError(f"the catalog's Semantic IDs are {catalog.num_levels} x {catalog.codebook_size} codes, "
                       f"the model's {layout.num_levels} x {layout.codebook_size}: run a SID refresh")
    keep = catalog.retrievable(layout.suffix_size)
    self.item_ids = tf.constant(catalog.item_ids[keep])
    self.tokens = tf.constant(catalog.sequences[keep] + np.asarray(layout.offsets)[None, :])
    self._rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(self.item_ids, tf.range(tf.size(self.item_ids, tf.int64))), -1)
    self.positions = layout.positions

  def rows(self, ids: tf.Tensor) -> tf.Tensor:
    """Catalog rows of `ids` (any shape), -1 where unknown or NO_ITEM."""
    ids = tf.cast(ids, tf.int64)
    return tf.where(tf.equal(ids, NO_ITEM), tf.constant(-1, tf.int64), self._rows.lookup(ids))

  def __call__(self, ids: tf.Tensor) -> tf.Tensor:
    """[...] ids -> [..., P] tokens; ragged ids give ragged tokens."""
    if isinstance(ids, tf.RaggedTensor):
      return ids.with_flat_values(self(ids.flat_values))
    rows = self.rows(ids)
    tokens = tf.gather(self.tokens, tf.maximum(rows, 0))
    return tf.where((rows >= 0)[..., None], tokens, tf.constant(PAD, tf.int64))


def encoder_tokens(item_tokens: ItemTokens, layout: TokenLayout, history: tf.RaggedTensor, user_ids: tf.Tensor,
                   history_length: int) -> tf.Tensor:
  """[B, 1 + history_length * P]: the user token, then the last `history_length` items' tokens, oldest
  first and left-padded, so the most recent item always sits at the same positions."""
  history = tf.cast(history, tf.int64)[:, -history_length:]
  tokens = item_tokens(history)                      # [B, (h), P]
  flat = tokens.merge_dims(1, 2)                     # [B, (h * P)]
  width = history_length * layout.positions
  left_padded = tf.reverse(tf.reverse(flat, axis=[1]).to_tensor(PAD, shape=[None, width]), axis=[1])
  return tf.concat([layout.user_tokens(tf.cast(user_ids, tf.int64))[:, None], left_padded], axis=1)


def decoder_inputs(targets: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Teacher forcing: [B, P] target tokens -> (BOS + the first P - 1 tokens, the targets)."""
  start = tf.fill([tf.shape(targets)[0], 1], tf.constant(BOS, targets.dtype))
  return tf.concat([start, targets[:, :-1]], axis=1), targets
