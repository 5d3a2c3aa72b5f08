"""FeatureState records, files and properties."""

import pytest
import tensorflow as tf

import conftest
from formats import artifacts, feature_state

_write_gzip_records = conftest._gzip_records

USER = feature_state.UserState(user_id=7, recent_items=(3, 1, 2), last_timestamp=conftest.DAY0,
                               interactions=5, liked=2, rating_sum=17.5, recent_liked=(0, 1, 1),
                               recent_timestamps=(conftest.DAY0 - 9, conftest.DAY0 - 5, conftest.DAY0),
                               decayed_count=1.5, decayed_liked=0.5, decayed_at=conftest.DAY0)
ITEM = feature_state.ItemState(item_id=2, first_seen_span=17532, ratings=4, liked=3, rating_sum=15.5,
                               title="Heat, The (1995)", decayed_count=2.0, decayed_liked=1.0,
                               decayed_at=conftest.DAY0 + 2 * conftest.DAY)
NEVER_RATED = feature_state.ItemState(item_id=9, first_seen_span=feature_state.NEVER, ratings=0,
                                      liked=0, rating_sum=0.0, title="Amélie (2001)")


def test_records_round_trip():
  assert feature_state.parse_user(feature_state.user_record(USER)) == USER
  assert feature_state.parse_item(feature_state.item_record(ITEM)) == ITEM
  assert feature_state.parse_item(feature_state.item_record(NEVER_RATED)) == NEVER_RATED


def test_files_are_read_back_by_id_and_properties_name_the_span(tmp_path):
  state = artifacts.FeatureState()
  state.uri = str(tmp_path)
  _write_gzip_records(str(tmp_path / "users-00000-of-00001.tfrecord.gz"),
                      [feature_state.user_record(USER)])
  # Two shards, as Beam may write them.
  _write_gzip_records(str(tmp_path / "items-00000-of-00002.tfrecord.gz"),
                      [feature_state.item_record(ITEM)])
  _write_gzip_records(str(tmp_path / "items-00001-of-00002.tfrecord.gz"),
                      [feature_state.item_record(NEVER_RATED)])
  assert feature_state.read_users(state) == {7: USER}
  assert feature_state.read_items(state) == {2: ITEM, 9: NEVER_RATED}
  # Spans 17532.. are days from DAY0: the state ends with DAY0 + 3.
  feature_state.set_properties(state, span=17535, span_period="day", previous_state_uri="/prev",
                               half_life_days=2.0)
  assert feature_state.span_of(state) == 17535
  assert feature_state.period_of(state) == "day"
  assert feature_state.half_life_of(state) == 2.0
  assert state.get_string_custom_property(feature_state.PREVIOUS_STATE_PROPERTY) == "/prev"
  # The serving model's snapshot: (count, liked, rating sum, decayed count, decayed liked) per user and item,
  # ids in order, decayed to the next span's start (DAY0 + 4): the user's by 4 days (x 1/4), the item's by 2.
  snapshot = feature_state.counter_snapshot(state)
  assert snapshot.user_ids.tolist() == [7] and snapshot.users.tolist() == [[5, 2, 17.5, 0.375, 0.125]]
  assert snapshot.item_ids.tolist() == [2, 9]
  assert snapshot.items.tolist() == [[4, 3, 15.5, 1.0, 0.5], [0, 0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("field,name", [("recent_liked", "labels"), ("recent_timestamps", "timestamps")])
def test_a_state_without_history_labels_or_timestamps_is_refused(field, name):
  older = feature_state.user_record(USER._replace(**{field: ()}))
  with pytest.raises(ValueError, match=f"user 7's state has 3 recent items but 0 {name}: .* run a SID refresh"):
    feature_state.parse_user(older)


def test_a_state_without_decayed_counters_is_refused():
  record = tf.train.Example.FromString(feature_state.item_record(ITEM))
  for name in ("decayed_count", "decayed_liked", "decayed_at"):
    del record.features.feature[name]
  with pytest.raises(ValueError, match="item 2's state has no decayed counters: .* run a SID refresh"):
    feature_state.parse_item(record.SerializeToString())
