"""HashedUsers: the user id as a feature of the ranker, through a hashed, budgeted TPUEmbedding table
(like the items' tables of items.py, so the same layer runs on TPU and on CPU/GPU).

Example:
  users = HashedUsers(rows=4096, dim=32, optimizer=tf.tpu.experimental.embedding.Adagrad(0.2))
  vectors = users(user_id, user_prior_interactions)   # [B, 32]
A user without interactions before the example (a new user, or a request without a user id) gets the
zero vector: one defined fallback, which training sees at every user's first interaction.
"""

import tensorflow as tf
import tensorflow_recommenders as tfrs

from formats.interaction_features import NO_USER


class HashedUsers(tf.keras.layers.Layer):
  """User id -> a row of a hashed embedding table; the zero vector for users without history."""

  def __init__(self, rows: int, dim: int, optimizer: tf.tpu.experimental.embedding.Adagrad, seed: int = 0,
               **kwargs):
    super().__init__(**kwargs)
    self.num_rows = rows
    table = tf.tpu.experimental.embedding.TableConfig(
        vocabulary_size=rows, dim=dim, combiner="sum", name="users",
        initializer=tf.keras.initializers.TruncatedNormal(stddev=dim ** -0.5, seed=seed))
    self.embedding = tfrs.layers.embedding.TPUEmbedding(
        {"user": tf.tpu.experimental.embedding.FeatureConfig(table=table, name="user")}, optimizer)

  def call(self, user_id: tf.Tensor, prior_interactions: tf.Tensor) -> tf.Tensor:
    user_id = tf.cast(user_id, tf.int64)
    known = tf.not_equal(user_id, NO_USER) & (tf.cast(prior_interactions, tf.int64) > 0)
    rows = tf.strings.to_hash_bucket_fast(tf.strings.as_string(user_id), self.num_rows)
    # One lookup per known user, none per other user: the sum combiner gives them the zero vector.
    lookups = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(rows, known), tf.cast(known, tf.int64))
    return self.embedding({"user": lookups})["user"]
