"""CounterLookup: the causal counters of formats/interaction_features.py at serving time.

Production rankers read such counters from a feature store. Here the pushed model carries a snapshot:
the FeatureState after the span the model was last trained on, as lookup tables, refreshed by every
continuous-training step. A request's user and candidates then get the counters that an interaction
right after that span carries in training (tested in signatures_test.py); users and items absent from
the snapshot get zero counters, as a first interaction does.

Example:
  lookup = CounterLookup(feature_state.counter_snapshot(state_artifact))
  features = lookup(user_id=tf.constant(7, tf.int64), candidates=tf.constant([1, 2], tf.int64))
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from formats import interaction_features as fields
from formats.feature_state import SNAPSHOT_COLUMNS, CounterSnapshot

_NO_ID = min(fields.NO_USER, fields.NO_ITEM)  # never a counted user or item


class _Table(tf.Module):
  """id -> its CounterSnapshot row (count, liked, rating sum, decayed count, decayed liked); zeros for unknown
  ids."""

  def __init__(self, ids: np.ndarray, values: np.ndarray):
    super().__init__()
    # Row 0 holds zeros, for unknown ids; it also keeps the table non-empty, which TensorFlow requires.
    keys = np.concatenate([[_NO_ID], ids]).astype(np.int64)
    self._rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.range(len(keys), dtype=tf.int64)), default_value=0)
    self._values = tf.constant(np.concatenate([np.zeros([1, SNAPSHOT_COLUMNS]), values]), tf.float64)

  def __call__(self, ids: tf.Tensor) -> tf.Tensor:
    return tf.gather(self._values, self._rows.lookup(ids))


def _named(counters: fields.Counters, decayed: fields.DecayedCounters, values: tf.Tensor) -> Dict[str, tf.Tensor]:
  return {counters.count: tf.cast(values[:, 0], tf.int64), counters.liked: tf.cast(values[:, 1], tf.int64),
          counters.rating_sum: tf.cast(values[:, 2], tf.float32),
          decayed.count: tf.cast(values[:, 3], tf.float32), decayed.liked: tf.cast(values[:, 4], tf.float32)}


class CounterLookup(tf.Module):
  """(user id, candidates [C]) -> the counter features of the C interactions, as MODEL_SPEC names them."""

  def __init__(self, snapshot: CounterSnapshot):
    super().__init__()
    self.users = _Table(snapshot.user_ids, snapshot.users)
    self.items = _Table(snapshot.item_ids, snapshot.items)

  def __call__(self, user_id: tf.Tensor, candidates: tf.Tensor) -> Dict[str, tf.Tensor]:
    user = tf.repeat(self.users(tf.reshape(user_id, [1])), tf.size(candidates), axis=0)
    return {**_named(fields.USER_COUNTERS, fields.USER_DECAYED, user),
            **_named(fields.ITEM_COUNTERS, fields.ITEM_DECAYED, self.items(candidates))}
