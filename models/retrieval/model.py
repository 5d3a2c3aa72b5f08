"""TIGER's sequence-to-sequence Transformer over Semantic-ID tokens (Rajput et al. 2023, arXiv 2305.05065).

The encoder reads a user token and the user's last items as SID tokens (sid_tokens.encoder_tokens); the
decoder generates the next item's P tokens one position at a time. Blocks are pre-norm Transformer layers
built from tf-keras's MultiHeadAttention (self-attention with the padding mask in the encoder; causal
self-attention and cross-attention in the decoder), as in T5, which the paper uses. The output layer
scores every token; a position's distribution is the log-softmax over that position's own vocabulary.

With `prefix_rows`, every item token also adds the row of the SID prefix it ends (the item's tokens up to
it, hashed into one table: the prefix-n-gram parameterisation of Zheng et al. 2025, arXiv 2504.02137, that
the ranker's prefix_ngram adaptation uses), in the encoder's history and the decoder's input alike. A
code's token alone means the same under every prefix above it; the prefix's row tells items apart by their
whole SID (the fine prefixes are nearly one per item) while the coarse ones stay shared by items of one
meaning. With `prefix_logits` too, each candidate next token's logit also gets the dot product of the
decoder's state with the row of the prefix it would make (the rows tied to the input's, as the item
embeddings of SASRec are), so the output tells items apart as the input does.

The model knows token ids only, not items: the catalog (item -> tokens) and the trie live beside it
(serving.py), so new items need no retraining and a checkpoint outlives catalog changes.

Example:
  model = TigerModel(RetrievalConfig(), layout)
  logits = model({"encoder_tokens": enc, "decoder_tokens": dec})     # [B, P, vocabulary]
  model.compile(tf.keras.optimizers.Adam(1e-3)); model.fit(dataset)  # batches of (features, targets)
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from models.retrieval.config import ITEMS, RetrievalConfig
from models.retrieval.sid_tokens import PAD, TokenLayout

ENCODER_TOKENS, DECODER_TOKENS = "encoder_tokens", "decoder_tokens"


class _Block(tf.keras.layers.Layer):
  """Pre-norm residual block: self-attention, optional cross-attention, feed-forward."""

  def __init__(self, config: RetrievalConfig, cross: bool, **kwargs):
    super().__init__(**kwargs)
    attention = lambda name: tf.keras.layers.MultiHeadAttention(
        config.heads, config.head_dim, dropout=config.dropout, name=name)
    self.self_attention = attention("self_attention")
    self.cross_attention = attention("cross_attention") if cross else None
    self.norms = [tf.keras.layers.LayerNormalization(epsilon=1e-6) for _ in range(3 if cross else 2)]
    self.feed_forward = tf.keras.Sequential([
        tf.keras.layers.Dense(config.mlp_dim, activation="gelu"), tf.keras.layers.Dropout(config.dropout),
        tf.keras.layers.Dense(config.d_model)])
    self.dropout = tf.keras.layers.Dropout(config.dropout)

  def call(self, x, mask, memory=None, memory_mask=None, causal=False, training=False):
    h = self.norms[0](x)
    x += self.dropout(self.self_attention(h, h, attention_mask=mask, use_causal_mask=causal, training=training),
                      training=training)
    if self.cross_attention is not None:
      h = self.norms[1](x)
      x += self.dropout(self.cross_attention(h, memory, attention_mask=memory_mask, training=training),
                        training=training)
    return x + self.dropout(self.feed_forward(self.norms[-1](x), training=training), training=training)


class TigerModel(tf.keras.Model):
  """Encoder-decoder over SID tokens; fit on (features, [B, P] target tokens)."""

  def __init__(self, config: RetrievalConfig, layout: TokenLayout, **kwargs):
    super().__init__(**kwargs)
    self.config, self.layout = config, layout
    init = tf.keras.initializers.TruncatedNormal(stddev=config.d_model ** -0.5, seed=config.seed)
    self.token_embedding = tf.keras.layers.Embedding(layout.vocabulary_size, config.d_model,
                                                     embeddings_initializer=init, name="tokens")
    self.prefix_embedding = (tf.keras.layers.Embedding(config.prefix_rows, config.d_model,
                                                       embeddings_initializer=init, name="prefixes")
                             if config.prefix_rows else None)
    if config.prefix_rows and layout.vocabulary_size ** layout.positions >= 2 ** 63:
      raise ValueError(f"prefix keys of {layout.positions} tokens of {layout.vocabulary_size:,} overflow int64: "
                       "fewer user_buckets or prefix_rows 0")
    self.encoder_positions = tf.keras.layers.Embedding(
        1 + config.history_length * (1 if config.encoder_input == ITEMS else layout.positions), config.d_model,
        name="encoder_positions")
    self.decoder_positions = tf.keras.layers.Embedding(layout.positions, config.d_model, name="decoder_positions")
    self.encoder_blocks = [_Block(config, cross=False, name=f"encoder_{i}") for i in range(config.encoder_layers)]
    self.decoder_blocks = [_Block(config, cross=True, name=f"decoder_{i}") for i in range(config.decoder_layers)]
    self.encoder_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    self.decoder_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    self.dropout = tf.keras.layers.Dropout(config.dropout)
    self.output_layer = tf.keras.layers.Dense(layout.vocabulary_size, name="logits")
    self.position_masks = self._position_masks()
    self.candidates, self.candidate_slots = self._candidates()

  def _position_masks(self) -> tf.Tensor:
    """[P, vocabulary]: 0 on each position's own tokens, -1e9 elsewhere."""
    masks = []
    for offset, size in zip(self.layout.offsets, self.layout.sizes):
      own = tf.range(self.layout.vocabulary_size)
      masks.append(tf.where((own >= offset) & (own < offset + size), 0.0, -1e9))
    return tf.stack(masks)

  def _candidates(self):
    """([P, S] each position's own tokens, padded with PAD to the widest S; [P, vocabulary] each token's
    index among its position's, S for the others'): where prefix logits go."""
    widest, vocabulary = max(self.layout.sizes), self.layout.vocabulary_size
    candidates = np.zeros([self.layout.positions, widest], np.int64)
    slots = np.full([self.layout.positions, vocabulary], widest, np.int64)
    for p, (offset, size) in enumerate(zip(self.layout.offsets, self.layout.sizes)):
      candidates[p, :size] = np.arange(offset, offset + size)
      slots[p, offset:offset + size] = np.arange(size)
    return tf.constant(candidates), tf.constant(slots)

  def _embed(self, vectors: tf.Tensor, positions: tf.keras.layers.Layer, training: bool) -> tf.Tensor:
    return self.dropout(vectors + positions(tf.range(tf.shape(vectors)[1]))[None], training=training)

  def _prefix_keys(self, items: tf.Tensor) -> tf.Tensor:
    """[..., n] an item's first n <= P tokens -> [..., n] int64: key i is the prefix items[..., :i + 1]
    written in base V (the vocabulary size), so exact; a prefix's row is its key modulo prefix_rows."""
    n, positions = tf.shape(items)[-1], self.layout.positions
    # Padded to P: the exported decoder knows n only at run time.
    padded = tf.pad(items, [[0, 0]] * (items.shape.rank - 1) + [[0, positions - n]])
    keys, key = [], tf.zeros_like(padded[..., 0])
    for i in range(positions):
      key = key * self.layout.vocabulary_size + padded[..., i]
      keys.append(key)
    return tf.stack(keys, axis=-1)[..., :n]

  def _item_vectors(self, items: tf.Tensor) -> tf.Tensor:
    """[..., n] an item's first n <= P tokens -> [..., n, d_model]: each token's embedding, plus its
    prefix's row where prefix pieces are on (none for PAD)."""
    vectors = self.token_embedding(items)
    if self.prefix_embedding is None:
      return vectors
    rows = tf.math.floormod(self._prefix_keys(items), self.config.prefix_rows)
    return vectors + self.prefix_embedding(rows) * tf.cast(tf.not_equal(items, PAD), vectors.dtype)[..., None]

  def _prefix_logits(self, states: tf.Tensor, decoder_tokens: tf.Tensor, first: tf.Tensor) -> tf.Tensor:
    """[B, t - first, d_model] states of positions first..t-1 -> [B, t - first, vocabulary]: at position p,
    each of p's own tokens x scores state . row(the target's first p tokens, then x); 0 on the others."""
    t = tf.shape(decoder_tokens)[1]
    parents = tf.pad(self._prefix_keys(decoder_tokens[:, 1:]), [[0, 0], [1, 0]])[:, first:]  # 0 before BOS
    keys = parents[:, :, None] * self.layout.vocabulary_size + self.candidates[None, first:t]  # [B, t', S]
    rows = self.prefix_embedding(tf.math.floormod(keys, self.config.prefix_rows))       # [B, t, S, d_model]
    own = tf.pad(tf.einsum("btd,btsd->bts", states, rows), [[0, 0], [0, 0], [0, 1]])    # slot S: 0
    # [t, B, vocabulary]: each token's slot among its position's candidates (S where it is not one).
    scattered = tf.gather(tf.transpose(own, [1, 0, 2]), self.candidate_slots[first:t], axis=2, batch_dims=1)
    return tf.transpose(scattered, [1, 0, 2])

  def _encoder_items(self, encoder_tokens: tf.Tensor) -> tf.Tensor:
    """[B, 1 + H * P] -> [B, 1 + H, P]: the user token, then each history item's P tokens."""
    positions = self.layout.positions
    user = tf.pad(encoder_tokens[:, :1], [[0, 0], [0, positions - 1]])
    items = tf.reshape(encoder_tokens[:, 1:], [tf.shape(encoder_tokens)[0], -1, positions])
    return tf.concat([user[:, None], items], axis=1)

  def memory_present(self, encoder_tokens: tf.Tensor) -> tf.Tensor:
    """[B, T'] which encoder positions hold something (T' = T, or 1 + H with encoder_input "items")."""
    if self.config.encoder_input == ITEMS:
      return tf.reduce_any(tf.not_equal(self._encoder_items(encoder_tokens), PAD), axis=2)
    return tf.not_equal(encoder_tokens, PAD)

  def encode(self, encoder_tokens: tf.Tensor, training: bool = False) -> tf.Tensor:
    """[B, T] tokens -> [B, T', d_model]: one vector per token, or per item (its tokens' embeddings summed)."""
    present = self.memory_present(encoder_tokens)
    mask = present[:, None, :] & present[:, :, None]
    items = self._item_vectors(self._encoder_items(encoder_tokens))  # [B, 1 + H, P, d_model]
    if self.config.encoder_input == ITEMS:
      vectors = tf.reduce_sum(items, axis=2)
    else:  # the user's token, then every history token (the user row's padding dropped)
      vectors = tf.concat([items[:, 0, :1], tf.reshape(items[:, 1:], [tf.shape(items)[0], -1, self.config.d_model])],
                          axis=1)
    x = self._embed(vectors, self.encoder_positions, training)
    for block in self.encoder_blocks:
      x = block(x, mask, training=training)
    return self.encoder_norm(x)

  def decode(self, memory: tf.Tensor, encoder_tokens: tf.Tensor, decoder_tokens: tf.Tensor,
             training: bool = False, last_only: bool = False) -> tf.Tensor:
    """[B, t] decoder tokens (BOS first) -> [B, t, vocabulary] logits, each masked to its position; with
    last_only, [B, 1, vocabulary]: the next token's alone (what decoding reads; the output layer and the
    prefix logits then score one position instead of t)."""
    memory_mask = self.memory_present(encoder_tokens)[:, None, :] & tf.ones_like(decoder_tokens, tf.bool)[:, :, None]
    vectors = tf.concat([self.token_embedding(decoder_tokens[:, :1]), self._item_vectors(decoder_tokens[:, 1:])],
                        axis=1)
    y = self._embed(vectors, self.decoder_positions, training)
    for block in self.decoder_blocks:
      y = block(y, None, memory=memory, memory_mask=memory_mask, causal=True, training=training)
    t = tf.shape(decoder_tokens)[1]
    first = t - 1 if last_only else 0
    states = self.decoder_norm(y)[:, first:]
    logits = self.output_layer(states)
    if self.config.prefix_logits:
      logits += self._prefix_logits(states, decoder_tokens, first)
    return logits + self.position_masks[None, first:t]

  def decode_next(self, memory: tf.Tensor, encoder_tokens: tf.Tensor, decoder_tokens: tf.Tensor) -> tf.Tensor:
    """[B, 1, vocabulary]: the next token's logits (decode with last_only), for beam search."""
    return self.decode(memory, encoder_tokens, decoder_tokens, last_only=True)

  # The step is plain TensorFlow (no Python control flow on tensors): AutoGraph's conversion of the whole
  # call graph made the first step of every training run cost seconds (as in models/ranking/model.py).
  @tf.autograph.experimental.do_not_convert
  def train_step(self, data):
    return super().train_step(data)

  def call(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    memory = self.encode(features[ENCODER_TOKENS], training=training)
    return self.decode(memory, features[ENCODER_TOKENS], features[DECODER_TOKENS], training=training)


def compile_model(model: TigerModel, learning_rate: float) -> None:
  """Cross-entropy of every target token under its position's distribution; Adam (TIGER trains with
  Adafactor; Adam trains these sizes as well on CPU)."""
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
