"""HistoryAttention: the candidate attends to the user's last items (target attention: DIN, Zhou et al. 2018,
arXiv 1706.06978; computed as a Transformer's attention, as BST, Chen et al. 2019, arXiv 1905.06874).

What a pooled history and counters cannot say is which of the user's recent items resemble the candidate,
whether the user liked those, and how recently. Each history item is a key (and value) made of its item
vector plus learned embeddings of its label (liked or not), its recency (0: the latest item) and, with
Semantic IDs, how many leading SID codes it shares with the candidate (Singh et al. 2023: a shared prefix is
shared meaning, for items never seen in training too). The candidate's vector is the query.
tf-keras `MultiHeadAttention` does the attention.

Example:
  attention = HistoryAttention(dim=32, heads=2, sid_levels=3)
  vector = attention(candidate, history_vectors, history_liked, candidate_codes, history_codes)   # [C, 32]
A user without history gets the zero vector. One user's history ([1, (H)] rows) may stand for all of a
request's C candidates (serving): it is broadcast.
"""

from typing import Optional

import tensorflow as tf

MAX_RECENCY = 64  # Recencies from this one on share its embedding row.
# Ages in days by powers of two: 0, 1-2, 3-6, 7-14, ... (bucket b: 2**b - 1 to 2**(b+1) - 2 days).
_AGE_BOUNDARIES = [float(2 ** b - 1) for b in range(1, 16)]
AGE_BUCKETS = len(_AGE_BOUNDARIES) + 1


def recency(history: tf.RaggedTensor) -> tf.RaggedTensor:
  """[B, (H)] items, oldest first -> their recency: 0 for each row's latest item."""
  lengths = history.row_lengths()
  return tf.RaggedTensor.from_row_lengths(
      tf.gather(lengths, history.value_rowids()) - 1 - tf.ragged.range(lengths).flat_values, lengths)


def age_bucket(age_days: tf.Tensor) -> tf.Tensor:
  """Days before the candidate -> one of AGE_BUCKETS buckets (negative days: 0)."""
  return tf.raw_ops.Bucketize(input=tf.cast(age_days, tf.float32), boundaries=_AGE_BOUNDARIES)


def _padded(values: tf.RaggedTensor) -> tf.Tensor:
  """[B, (H), ...] -> [B, H + 1, ...]: one padding column more, so that an all-empty batch keeps a key."""
  dense = values.to_tensor()
  padding = [[0, 0], [0, 1]] + [[0, 0]] * (len(dense.shape) - 2)
  return tf.pad(dense, padding)


def shared_prefix(candidate_codes: tf.Tensor, history_codes: tf.Tensor) -> tf.Tensor:
  """[C, L] candidates' SID codes and [B, H, L] history items' (B is C or 1; -1 codes: none) -> [C, H] how
  many leading codes each history item shares with the candidate (0 when either has no codes)."""
  candidate = candidate_codes[:, None, :]
  equal = tf.equal(candidate, history_codes) & (candidate >= 0) & (history_codes >= 0)
  return tf.reduce_sum(tf.math.cumprod(tf.cast(equal, tf.int32), axis=2), axis=2)


class HistoryAttention(tf.keras.layers.Layer):
  """candidate [C, d], history vectors [B, (H), d], labels [B, (H)] (and SID codes) -> [C, d]."""

  def __init__(self, dim: int, heads: int, sid_levels: int = 0, ages: bool = False, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    if dim % heads:
      raise ValueError(f"history attention: {heads} heads do not divide the item dimension {dim}")
    init = lambda offset: tf.keras.initializers.TruncatedNormal(stddev=dim ** -0.5, seed=seed + offset)
    self.label = tf.keras.layers.Embedding(2, dim, embeddings_initializer=init(1))
    self.recency = tf.keras.layers.Embedding(MAX_RECENCY, dim, embeddings_initializer=init(2))
    self.shared = tf.keras.layers.Embedding(sid_levels + 1, dim, embeddings_initializer=init(3)) \
        if sid_levels else None
    self.age = tf.keras.layers.Embedding(AGE_BUCKETS, dim, embeddings_initializer=init(5)) if ages else None
    self.attention = tf.keras.layers.MultiHeadAttention(
        num_heads=heads, key_dim=dim // heads, kernel_initializer=tf.keras.initializers.GlorotUniform(seed + 4))

  def call(self, candidate: tf.Tensor, history_vectors: tf.RaggedTensor, history_liked: tf.RaggedTensor,
           candidate_codes: Optional[tf.Tensor] = None, history_codes: Optional[tf.RaggedTensor] = None,
           history_age_days: Optional[tf.RaggedTensor] = None) -> tf.Tensor:
    present = _padded(tf.ones_like(history_liked, tf.bool))                 # [B, H]
    liked = tf.cast(_padded(history_liked) > 0, tf.int32)
    keys = (_padded(history_vectors) + self.label(liked)
            + self.recency(tf.minimum(_padded(recency(history_liked)), MAX_RECENCY - 1)))
    if self.age is not None:
      keys += self.age(age_bucket(_padded(history_age_days)))
    candidates = tf.shape(candidate)[0]
    keys = tf.broadcast_to(keys, tf.concat([[candidates], tf.shape(keys)[1:]], 0))
    if self.shared is not None:
      keys += self.shared(shared_prefix(candidate_codes, _padded(history_codes)))
    mask = tf.broadcast_to(present, tf.shape(keys)[:2])
    attended = self.attention(candidate[:, None, :], keys, attention_mask=mask[:, None, :])[:, 0]
    # Without history the softmax spreads over padding: no history is the zero vector instead.
    return attended * tf.cast(tf.reduce_any(mask, axis=1), attended.dtype)[:, None]
