"""The FeatureState artifact's format: what interaction features need from the past, after a span.

A daily ingestion reads only its span's files; the users' recent items and counters and the items'
first-seen spans and counters come from the previous run's state, and the run writes previous state +
its span as the next one. Files: `<uri>/users-*.tfrecord.gz` and `<uri>/items-*.tfrecord.gz`, GZIP
TFRecords of tf.Example (one record per user or item, written and read by Beam). Custom properties:
`span` (the last span it includes), `span_period`, `previous_state_uri` ('' for the first state),
`counter_half_life_days` (of its decayed counters).
"""

import calendar
import os
from typing import Any, Dict, NamedTuple, Tuple

import numpy as np
import tensorflow as tf
from tfx import types

from formats import interaction_features as fields, spans, tf_examples

USERS_PREFIX = "users"
ITEMS_PREFIX = "items"
FILE_SUFFIX = ".tfrecord.gz"
NEVER = -1  # `first_seen_span` of an item nobody rated yet.
SPAN_PERIOD_PROPERTY = "span_period"
PREVIOUS_STATE_PROPERTY = "previous_state_uri"
HALF_LIFE_PROPERTY = "counter_half_life_days"


class UserState(NamedTuple):
  user_id: int
  recent_items: Tuple[int, ...]  # Oldest first, at most the ingestion's history_length.
  last_timestamp: int
  interactions: int
  liked: int
  rating_sum: float
  recent_liked: Tuple[int, ...] = ()  # Per recent item, 1 if liked.
  recent_timestamps: Tuple[int, ...] = ()  # Per recent item, when it was rated.
  decayed_count: float = 0.0  # The decayed counters as of decayed_at (components/span_example_gen/features.py).
  decayed_liked: float = 0.0
  decayed_at: int = 0


class ItemState(NamedTuple):
  item_id: int
  first_seen_span: int  # NEVER if never rated.
  ratings: int
  liked: int
  rating_sum: float
  title: str
  decayed_count: float = 0.0
  decayed_liked: float = 0.0
  decayed_at: int = 0


def user_record(state: UserState) -> bytes:
  return tf_examples.example(
      int64s={"user_id": [state.user_id], "recent_items": state.recent_items, "recent_liked": state.recent_liked,
              "recent_timestamps": state.recent_timestamps,
              "last_timestamp": [state.last_timestamp], "interactions": [state.interactions],
              "liked": [state.liked], "decayed_at": [state.decayed_at]},
      floats={"rating_sum": [state.rating_sum], "decayed_count": [state.decayed_count],
              "decayed_liked": [state.decayed_liked]}).SerializeToString()


def item_record(state: ItemState) -> bytes:
  return tf_examples.example(
      int64s={"item_id": [state.item_id], "first_seen_span": [state.first_seen_span], "ratings": [state.ratings],
              "liked": [state.liked], "decayed_at": [state.decayed_at]},
      floats={"rating_sum": [state.rating_sum], "decayed_count": [state.decayed_count],
              "decayed_liked": [state.decayed_liked]}, strings={"title": [state.title]}).SerializeToString()


def _decayed(feature, kind: str, entity: int) -> Tuple[float, float, int]:
  if "decayed_at" not in feature:
    raise ValueError(f"{kind} {entity}'s state has no decayed counters: a state written before them; "
                     f"run a SID refresh")
  return (feature["decayed_count"].float_list.value[0], feature["decayed_liked"].float_list.value[0],
          feature["decayed_at"].int64_list.value[0])


def parse_user(record: bytes) -> UserState:
  feature = tf.train.Example.FromString(record).features.feature
  single = lambda name: feature[name].int64_list.value[0]
  state = UserState(single("user_id"), tuple(feature["recent_items"].int64_list.value),
                    single("last_timestamp"), single("interactions"), single("liked"),
                    feature["rating_sum"].float_list.value[0], tuple(feature["recent_liked"].int64_list.value),
                    tuple(feature["recent_timestamps"].int64_list.value),
                    *_decayed(feature, "user", single("user_id")))
  for name, values in (("labels", state.recent_liked), ("timestamps", state.recent_timestamps)):
    if len(values) != len(state.recent_items):
      raise ValueError(f"user {state.user_id}'s state has {len(state.recent_items)} recent items but "
                       f"{len(values)} {name}: a state written before history {name}; run a SID refresh")
  return state


def parse_item(record: bytes) -> ItemState:
  feature = tf.train.Example.FromString(record).features.feature
  single = lambda name: feature[name].int64_list.value[0]
  return ItemState(single("item_id"), single("first_seen_span"), single("ratings"), single("liked"),
                   feature["rating_sum"].float_list.value[0],
                   feature["title"].bytes_list.value[0].decode("utf-8"), *_decayed(feature, "item", single("item_id")))


def files_pattern(uri: str, prefix: str) -> str:
  return os.path.join(uri, f"{prefix}-*{FILE_SUFFIX}")


def _read(artifact: types.Artifact, prefix: str, parse) -> Dict[int, NamedTuple]:
  files = tf.io.gfile.glob(files_pattern(artifact.uri, prefix))
  records = tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()
  return {state[0]: state for state in map(parse, records)}


def read_users(artifact: types.Artifact) -> Dict[int, UserState]:
  """Every user's state in memory: for tests and small tools, not for the pipeline (use Beam)."""
  return _read(artifact, USERS_PREFIX, parse_user)


def read_items(artifact: types.Artifact) -> Dict[int, ItemState]:
  """Every item's state in memory: for tests and small tools, not for the pipeline (use Beam)."""
  return _read(artifact, ITEMS_PREFIX, parse_item)


def set_properties(artifact: types.Artifact, span: int, span_period: str,
                   previous_state_uri: str, half_life_days: float) -> None:
  artifact.set_int_custom_property(spans.SPAN_PROPERTY, span)
  artifact.set_string_custom_property(SPAN_PERIOD_PROPERTY, span_period)
  artifact.set_string_custom_property(PREVIOUS_STATE_PROPERTY, previous_state_uri)
  artifact.set_float_custom_property(HALF_LIFE_PROPERTY, half_life_days)


def properties(artifact: types.Artifact) -> Dict[str, Any]:
  """set_properties' arguments that give another artifact of the same files the same properties."""
  return dict(span=span_of(artifact), span_period=period_of(artifact),
              previous_state_uri=artifact.get_string_custom_property(PREVIOUS_STATE_PROPERTY),
              half_life_days=half_life_of(artifact))


def span_of(artifact: types.Artifact) -> int:
  """The last span the state includes."""
  return artifact.get_int_custom_property(spans.SPAN_PROPERTY)


def period_of(artifact: types.Artifact) -> str:
  return artifact.get_string_custom_property(SPAN_PERIOD_PROPERTY)


def half_life_of(artifact: types.Artifact) -> float:
  """The decayed counters' half-life in days; 0.0 for a state written before them."""
  return artifact.get_float_custom_property(HALF_LIFE_PROPERTY)


SNAPSHOT_COLUMNS = 5


class CounterSnapshot(NamedTuple):
  """Every user's and item's counters after the state's last span, as arrays: what a serving model
  looks up at request time (an interaction right after that span would carry exactly these).
  `users` and `items` hold (count, liked, rating sum, decayed count, decayed liked) per row of `user_ids`
  and `item_ids`, the decayed ones as of the start of the next span."""
  user_ids: np.ndarray  # [U] int64
  users: np.ndarray     # [U, SNAPSHOT_COLUMNS] float64
  item_ids: np.ndarray  # [I] int64
  items: np.ndarray     # [I, SNAPSHOT_COLUMNS] float64

  @classmethod
  def empty(cls) -> "CounterSnapshot":
    return cls(np.zeros([0], np.int64), np.zeros([0, SNAPSHOT_COLUMNS]), np.zeros([0], np.int64),
               np.zeros([0, SNAPSHOT_COLUMNS]))


def _snapshot_rows(states, all_time, now: int, half_life_days: float) -> np.ndarray:
  """Per user or item state, its all-time counters (`all_time(state)`: count, liked, rating sum), then its
  decayed count and likes decayed to `now`."""
  rows = [(*all_time(s), *fields.decayed(s.decayed_count, s.decayed_liked, s.decayed_at, now, half_life_days))
          for s in states]
  return np.array(rows, np.float64).reshape(-1, SNAPSHOT_COLUMNS)


def counter_snapshot(artifact: types.Artifact) -> CounterSnapshot:
  """The state's counters in memory. They become constants of the serving model, which holds one row
  per user and item; at a scale where that is too much, serving reads them from a feature store."""
  users = sorted(read_users(artifact).values())
  items = sorted(read_items(artifact).values())
  now = calendar.timegm(spans.span_start(span_of(artifact) + 1, period_of(artifact)).timetuple())
  half_life = half_life_of(artifact)
  return CounterSnapshot(
      np.array([u.user_id for u in users], np.int64),
      _snapshot_rows(users, lambda u: (u.interactions, u.liked, u.rating_sum), now, half_life),
      np.array([i.item_id for i in items], np.int64),
      _snapshot_rows(items, lambda i: (i.ratings, i.liked, i.rating_sum), now, half_life))
