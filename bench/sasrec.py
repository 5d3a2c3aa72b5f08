"""SASRec (Kang and McAuley 2018, "Self-Attentive Sequential Recommendation", arXiv 1808.09781) in tf-keras,
the sequential baseline of TIGER's Table 1 (Rajput et al. 2023).

A user's last `max_length` items (item embedding x sqrt(dim) plus a learned position embedding) pass through
`blocks` causal self-attention blocks (tf.keras.layers.MultiHeadAttention; layer norm, residual connections,
a two-layer feed-forward and dropout as in the paper); each position's output scores every item by the dot
product with the item embeddings (shared with the input). Training differs from the paper in one way: the
full softmax cross-entropy over every item at every position, instead of the binary cross-entropy against
one sampled negative, which makes a stronger model (Klenitskiy and Vasilev 2023, "Turning Dross Into Gold
Loss: is BERT4Rec really better than SASRec?").

Settings: 2 blocks and 1 head as in the paper, dim 64, 20 positions (the bench's histories); Adam at 3e-3,
dropout 0.1, batches of 32 windows, 8 epochs, chosen on ml-latest-small's leave-one-out validation within
a fit of about 3 minutes on 2 CPUs. Validation Recall@10 after 6, 8 and 10 epochs: 0.071, 0.079, 0.087
with the paper's dropout 0.2 and Adam at 1e-3; 0.089, 0.102, 0.098 at 3e-3; 0.102, 0.105, 0.105 with
dropout 0.1 at 3e-3 (610 users: a standard error of about 0.012). Batches of 128 windows learned less in
the same time (0.030 after 3 epochs against 0.036 after 2 of 32).

Each user's sequence is cut into windows of `max_length` targets, each target predicted from the items
before it in its window; an update trains on the windows of the new items with the earlier ones as input,
for 2 epochs at 3e-4: over ml-latest-small's first 24 month spans from 2013-09-01 (bench/retrieval.py
--spans 24), pooled Recall@10 0.062, against 0.054 without updates and 0.040 at the fit's 3e-3.
Recommending scores the whole catalog at the history's last position and keeps the best known items
outside the history.

Example:
  model = SASRec(items=catalog).fit(train_sequences)
  model.recommend(histories, k=10)  # [n, 10] item ids
"""

import os
from typing import Optional, Sequence, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import tensorflow as tf

from models.retrieval.baselines import IdTable, Sequences


class _Block(tf.keras.layers.Layer):
  """Causal self-attention then the point-wise feed-forward, each pre-norm with a residual connection."""

  def __init__(self, dim: int, heads: int, dropout: float):
    super().__init__()
    self.attention = tf.keras.layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)
    self.norms = [tf.keras.layers.LayerNormalization(epsilon=1e-8) for _ in range(2)]
    self.feed_forward = tf.keras.Sequential([
        tf.keras.layers.Dense(dim, activation="relu"), tf.keras.layers.Dropout(dropout),
        tf.keras.layers.Dense(dim), tf.keras.layers.Dropout(dropout)])
    self.dropout = tf.keras.layers.Dropout(dropout)

  def call(self, x, attention_mask, training=False):
    h = self.norms[0](x)
    x += self.dropout(self.attention(h, x, attention_mask=attention_mask, training=training), training=training)
    return x + self.feed_forward(self.norms[1](x), training=training)


class SASRecModel(tf.keras.Model):
  """Item rows [B, L] (0: padding, on the left) -> hidden states [B, L, dim]; logits() scores every item."""

  def __init__(self, items: int, max_length: int, dim: int, blocks: int, heads: int, dropout: float):
    super().__init__()
    self.item_embedding = tf.keras.layers.Embedding(items, dim)
    self.position_embedding = tf.keras.layers.Embedding(max_length, dim)
    self.dropout = tf.keras.layers.Dropout(dropout)
    self.blocks = [_Block(dim, heads, dropout) for _ in range(blocks)]
    self.norm = tf.keras.layers.LayerNormalization(epsilon=1e-8)
    self.scale = float(np.sqrt(dim))

  def call(self, rows, training=False):
    present = tf.cast(rows > 0, tf.float32)[..., None]
    length = tf.shape(rows)[1]
    x = self.item_embedding(rows) * self.scale + self.position_embedding(tf.range(length))[None]
    x = self.dropout(x, training=training) * present
    causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
    mask = tf.logical_and(causal[None], (rows > 0)[:, None, :])
    for block in self.blocks:
      x = block(x, mask, training=training) * present
    return self.norm(x)

  def logits(self, hidden: tf.Tensor) -> tf.Tensor:
    return tf.matmul(hidden, self.item_embedding.embeddings, transpose_b=True)


class SASRec:
  """A baselines.Recommender over a SASRecModel. `items` are the ids it may meet (the protocol's catalog);
  it recommends only items it was trained on."""

  def __init__(self, items: np.ndarray, max_length: int = 20, dim: int = 64, blocks: int = 2, heads: int = 1,
               dropout: float = 0.1, epochs: int = 8, update_epochs: int = 2, batch_size: int = 32,
               learning_rate: float = 3e-3, update_learning_rate: float = 3e-4, seed: int = 0):
    self.items = IdTable(items)
    self.max_length, self.dim, self.blocks, self.heads, self.dropout = max_length, dim, blocks, heads, dropout
    self.epochs, self.update_epochs, self.batch_size, self.seed = epochs, update_epochs, batch_size, seed
    self.learning_rate, self.update_learning_rate = learning_rate, update_learning_rate
    self.model: Optional[SASRecModel] = None
    self._optimizer = self._step = None

  def windows(self, sequences: Sequences) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, weights), each [windows, max_length] and left-padded: every new item (past the
    user's first) is a target once, predicted from the items before it in its window."""
    length, inputs, targets, weights = self.max_length, [], [], []
    for items, context in zip(sequences.items, sequences.context):
      rows, first = self.items.rows(items), max(int(context), 1)
      for end in range(len(rows), first, -length):
        start = max(end - length, 1)
        inputs.append(rows[start - 1:end - 1])
        targets.append(rows[start:end])
        weights.append(np.arange(start, end) >= first)
    def padded(parts, dtype):
      return np.array([np.pad(part, (length - len(part), 0)) for part in parts], dtype).reshape(-1, length)
    return padded(inputs, np.int64), padded(targets, np.int64), padded(weights, np.float32)

  def _train(self, sequences: Sequences, epochs: int, learning_rate: float) -> None:
    inputs, targets, weights = self.windows(sequences)
    if not weights.any():
      return
    self._optimizer.learning_rate.assign(learning_rate)
    self.items.learn(sequences.new_items())
    data = tf.data.Dataset.from_tensor_slices((inputs, targets, weights))
    for _ in range(epochs):
      for batch in data.shuffle(len(inputs), seed=self.seed).batch(self.batch_size):
        self._step(*batch)

  def fit(self, sequences: Sequences) -> "SASRec":
    tf.keras.utils.set_random_seed(self.seed)
    self.items.known[:] = False
    model = SASRecModel(self.items.size, self.max_length, self.dim, self.blocks, self.heads, self.dropout)
    optimizer = tf.keras.optimizers.Adam(self.learning_rate)

    @tf.function(reduce_retracing=True, autograph=False)
    def step(inputs, targets, weights):
      with tf.GradientTape() as tape:
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, model.logits(model(inputs, True)))
        loss = tf.reduce_sum(losses * weights) / tf.reduce_sum(weights)
      optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    self.model, self._optimizer, self._step = model, optimizer, step
    self._train(sequences, self.epochs, self.learning_rate)
    return self

  def update(self, sequences: Sequences) -> "SASRec":
    self._train(sequences, self.update_epochs, self.update_learning_rate)
    return self

  def recommend(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool = True,
                users: Optional[np.ndarray] = None) -> np.ndarray:
    del users  # the history is the user
    return self.items.top_k_chunked(
        lambda part: self.model.logits(self.model(self.items.padded(histories[part], self.max_length))[:, -1]).numpy(),
        histories, k, exclude_history)
