"""The interaction features, named once: SpanExampleGen writes them (schemas/interactions), the ranking
model, its serving signatures, the experiments' baselines and the query command read them from here.

Counters are causal: a user's or an item's interactions strictly before the example (same second: file
order), as (count, liked, rating sum), and as decayed (count, liked): each earlier interaction weighs
2 ** -(its age / the ingestion's half-life), so they follow what is recent where the all-time ones average.
A cold item has none: its Semantic ID carries the signal, which is the point of Singh et al. 2023.
`counter_features` turns them, with the labels of the user's history window, into what the ranker and the
logistic regression baseline read; the like-rates it smooths are the counting baselines' scores.

Example:
  features = tf.io.parse_example(serialized, TRAINING_SPEC)
  dense = counter_features(features)   # [B, 7]: per user and per item, log1p(count), like-rate, mean rating;
                                       # the user's like-rate over the history window
  dense = counter_features(features, decayed=True)  # [B, 11]: and per user and per item, the decayed ones
"""

from typing import Dict, NamedTuple, Tuple, Union

import tensorflow as tf

from formats import tf_examples

USER_ID, ITEM_ID, CURRENT_ITEM, HISTORY = "user_id", "item_id", "current_item", "history"
HISTORY_LIKED = "history_liked"  # per history item, 1 if the user liked it
HISTORY_AGE_DAYS = "history_age_days"  # per history item, whole days between it and the example
SECONDS_PER_DAY = 86400
LABEL = "liked"
TIMESTAMP = "timestamp"  # seconds since the epoch
ITEM_SEGMENT = "item_segment"
LIKED_MIN_RATING = 4.0  # liked = rating >= this
NO_ITEM = 0  # `current_item` of a user's first interaction: MovieLens ids start at 1.
NO_USER = 0  # a request without a user id


class Counters(NamedTuple):
  """Feature names of one entity's causal counters."""
  count: str
  liked: str
  rating_sum: str


USER_COUNTERS = Counters("user_prior_interactions", "user_prior_liked", "user_prior_rating_sum")
ITEM_COUNTERS = Counters("item_prior_count_all", "item_prior_liked", "item_prior_rating_sum")
COUNTERS = {"user": USER_COUNTERS, "item": ITEM_COUNTERS}


class DecayedCounters(NamedTuple):
  """Feature names of one entity's decayed causal counters (floats)."""
  count: str
  liked: str


USER_DECAYED = DecayedCounters("user_decayed_count", "user_decayed_liked")
ITEM_DECAYED = DecayedCounters("item_decayed_count", "item_decayed_liked")
DECAYED_COUNTERS = {"user": USER_DECAYED, "item": ITEM_DECAYED}

_COUNTER_SPEC = {name: tf.io.FixedLenFeature([], tf.float32 if name == c.rating_sum else tf.int64, default_value=0)
                 for c in COUNTERS.values() for name in c}
_COUNTER_SPEC.update({name: tf.io.FixedLenFeature([], tf.float32, default_value=0.0)
                      for c in DECAYED_COUNTERS.values() for name in c})
# What the model reads from an interaction tf.Example. Absent optional features take their defaults: no
# current item, an unknown user, no counters (a user or item never seen).
MODEL_SPEC = {
    ITEM_ID: tf.io.FixedLenFeature([], tf.int64),
    CURRENT_ITEM: tf.io.FixedLenFeature([], tf.int64, default_value=NO_ITEM),
    HISTORY: tf.io.RaggedFeature(tf.int64),
    HISTORY_LIKED: tf.io.RaggedFeature(tf.int64),
    HISTORY_AGE_DAYS: tf.io.RaggedFeature(tf.int64),
    USER_ID: tf.io.FixedLenFeature([], tf.int64, default_value=NO_USER),
    **_COUNTER_SPEC,
}
TRAINING_SPEC = {**MODEL_SPEC, LABEL: tf.io.FixedLenFeature([], tf.int64)}
EVALUATION_SPEC = {**TRAINING_SPEC, ITEM_SEGMENT: tf.io.FixedLenFeature([], tf.string)}
# What counting a span's interactions in time order reads (models/ranking/sid_clusters.py).
COUNTING_SPEC = {ITEM_ID: MODEL_SPEC[ITEM_ID], LABEL: TRAINING_SPEC[LABEL],
                 TIMESTAMP: tf.io.FixedLenFeature([], tf.int64)}

# The candidate's SID clusters (models/ranking/sid_clusters.py): its first code, its first two codes.
SID_CLUSTER_LEVELS = 2
# Not in the tf.Examples: the warm-up's [B, SID_CLUSTER_LEVELS * 2] (interactions, liked) of each example's
# clusters before it, computed by the trainer (sid_clusters.causal_counts).
SID_CLUSTER_COUNTS = "sid_cluster_counts"

# Pseudo-interactions that pull a rate towards its neutral value while an entity has few interactions.
SMOOTHING = 5.0
NEUTRAL_LIKE_RATE = 0.5
COUNTER_FEATURES = 7
DECAYED_COUNTER_FEATURES = 4  # what decayed=True adds


# The decayed counters' half-life unless the ingestion sets one (pipeline/configs.py): a month, between a
# user's session (most history items share the example's day) and an item's season.
COUNTER_HALF_LIFE_DAYS = 30.0


def decay(seconds: float, half_life_days: float) -> float:
  """The weight of an interaction `seconds` old in a decayed counter: halved every `half_life_days`."""
  return 2.0 ** (-max(seconds, 0) / (half_life_days * SECONDS_PER_DAY))


def decayed(count: float, liked: float, at: int, now: int, half_life_days: float) -> Tuple[float, float]:
  """A decayed (count, liked) as of timestamp `at`, decayed on to timestamp `now`."""
  weight = decay(now - at, half_life_days)
  return count * weight, liked * weight


def liked(rating: float) -> int:
  """The label of a rating: 1 if liked."""
  return int(rating >= LIKED_MIN_RATING)


def ragged(values) -> tf.RaggedTensor:
  """A variable-length feature as parsed (ragged, or sparse from a VarLenFeature) as a RaggedTensor."""
  return tf.RaggedTensor.from_sparse(values) if isinstance(values, tf.SparseTensor) else values


# What a history item without a label or an age counts as (a dict of features without them): liked, just now,
# as a client's request defaults them (serving/query.py).
HISTORY_DEFAULTS = {HISTORY_LIKED: 1, HISTORY_AGE_DAYS: 0}


def per_history_item(features: Dict[str, tf.Tensor], name: str) -> tf.RaggedTensor:
  """HISTORY_LIKED or HISTORY_AGE_DAYS as a RaggedTensor; absent, HISTORY_DEFAULTS for each history item."""
  if name in features:
    return ragged(features[name])
  history = ragged(features[HISTORY])
  return history.with_flat_values(tf.fill(tf.shape(history.flat_values), tf.constant(HISTORY_DEFAULTS[name],
                                                                                       history.dtype)))


def windowed(features: Dict[str, tf.Tensor], window: int) -> Dict[str, tf.Tensor]:
  """`features` with the history (and its labels and ages) cut to each row's last `window` items; 0: as is.
  A ranker reads a shorter window than the ingestion keeps (history_length) this way."""
  if not window or HISTORY not in features:
    return features
  return {**features, **{name: ragged(features[name])[:, -window:]
                         for name in (HISTORY, HISTORY_LIKED, HISTORY_AGE_DAYS) if name in features}}


def _counter(features: Dict[str, tf.Tensor], name: str) -> tf.Tensor:
  """A counter as float; absent, zeros (as parsing an example without it gives)."""
  if name in features:
    return tf.cast(features[name], tf.float32)
  return tf.zeros(tf.shape(features[ITEM_ID]), tf.float32)


def like_rate(features: Dict[str, tf.Tensor], counters: Union[Counters, DecayedCounters], prior=NEUTRAL_LIKE_RATE
              ) -> tf.Tensor:
  """Smoothed share of liked interactions before the example (towards `prior`, a rate or one per example):
  the counting baselines' score."""
  return ((_counter(features, counters.liked) + prior * SMOOTHING)
          / (_counter(features, counters.count) + SMOOTHING))


def history_like_rate(features: Dict[str, tf.Tensor]) -> tf.Tensor:
  """Smoothed share of liked items in the user's history window (its last items, HISTORY_LIKED): the
  user's recent taste, which the all-time user like-rate averages away. One row per history row; absent,
  the neutral rate per example."""
  if HISTORY_LIKED not in features:
    return tf.fill(tf.shape(features[ITEM_ID]), NEUTRAL_LIKE_RATE)
  liked = tf.cast(ragged(features[HISTORY_LIKED]), tf.float32)
  return ((tf.reduce_sum(liked, axis=1) + NEUTRAL_LIKE_RATE * SMOOTHING)
          / (tf.cast(liked.row_lengths(), tf.float32) + SMOOTHING))


def counter_features(features: Dict[str, tf.Tensor], decayed: bool = False) -> tf.Tensor:
  """[B, COUNTER_FEATURES]: per user, then per item, log1p(count) / 5, the smoothed like-rate, and the
  smoothed mean rating relative to LIKED_MIN_RATING; then the history like-rate (one user's request
  stands for all its candidates). With `decayed`, DECAYED_COUNTER_FEATURES more: per user, then per item,
  log1p(decayed count) / 5 and the smoothed decayed like-rate. All finite; 0-count entities and empty
  histories get neutral values."""
  columns = []
  for counters in COUNTERS.values():
    count = _counter(features, counters.count)
    mean_rating = (_counter(features, counters.rating_sum) + LIKED_MIN_RATING * SMOOTHING) / (count + SMOOTHING)
    columns += [tf.math.log1p(count) / 5.0, like_rate(features, counters), mean_rating - LIKED_MIN_RATING]
  columns.append(tf.broadcast_to(history_like_rate(features), tf.shape(columns[0])))
  if decayed:
    for counters in DECAYED_COUNTERS.values():
      columns += [tf.math.log1p(_counter(features, counters.count)) / 5.0, like_rate(features, counters)]
  return tf.stack(columns, axis=1)


def defaults_batch(item_ids) -> Dict[str, tf.Tensor]:
  """MODEL_SPEC's features of examples that give only `item_ids`: every other feature at its default."""
  examples = [tf_examples.example(int64s={ITEM_ID: [int(i)]}).SerializeToString() for i in item_ids]
  return tf.io.parse_example(tf.constant(examples, tf.string), MODEL_SPEC)
