import numpy as np
import tensorflow as tf

import conftest
from formats import interaction_features as fields
from models.ranking import baselines, evaluation


def _features(rows):
  return tf.io.parse_example([conftest.example(**row).SerializeToString() for row in rows], fields.TRAINING_SPEC)


def test_like_rates_are_smoothed_shares_of_earlier_likes():
  features = _features([
      dict(item_id=1, liked=1, item_prior_count_all=5, item_prior_liked=5, user_prior_interactions=15,
           user_prior_liked=0),
      dict(item_id=2, liked=0)])  # no counters: the neutral rate
  np.testing.assert_allclose(baselines.item_like_rate(features), [7.5 / 10, 0.5])
  np.testing.assert_allclose(baselines.user_like_rate(features), [2.5 / 20, 0.5])
  assert np.isfinite(fields.counter_features(features).numpy()).all()


def test_the_history_like_rate_is_the_smoothed_share_of_liked_history_items():
  features = _features([dict(item_id=1, liked=1, history=[4, 5, 6], history_liked=[1, 1, 0]),
                        dict(item_id=2, liked=0)])  # no history: the neutral rate
  np.testing.assert_allclose(fields.history_like_rate(features), [(2 + 2.5) / (3 + 5), 0.5])
  np.testing.assert_allclose(fields.counter_features(features)[:, -1], [(2 + 2.5) / (3 + 5), 0.5])
  # One user's request stands for every candidate: its history's rate is each candidate's.
  request = {fields.ITEM_ID: tf.constant([7, 8, 9]), fields.HISTORY_LIKED: tf.ragged.constant([[0, 0]], tf.int64)}
  np.testing.assert_allclose(fields.counter_features(request)[:, -1], [2.5 / 7] * 3)


def test_the_counter_regression_learns_from_earlier_spans_only():
  rng = np.random.default_rng(0)

  def span(size):
    counts = rng.integers(0, 40, size)
    liked = np.minimum(counts, rng.integers(0, 40, size))
    labels = (liked + 2.5) / (counts + 5) > 0.5  # the item's like-rate decides
    return _features([dict(item_id=1, liked=int(y), item_prior_count_all=int(c), item_prior_liked=int(k))
                      for c, k, y in zip(counts, liked, labels)])

  scores = baselines.scorers([span(300), span(300)])
  held_out = span(200)
  for learned in (baselines.COUNTER_REGRESSION, baselines.COUNTER_TREES):
    assert evaluation.auc(held_out[fields.LABEL].numpy(), scores[learned](held_out)) > 0.95, learned
  assert evaluation.auc(held_out[fields.LABEL].numpy(), scores[baselines.ITEM_LIKE_RATE](held_out)) == 1.0


def test_decayed_counters_are_four_more_counting_features():
  features = _features([dict(item_id=1, liked=1, user_decayed_count=3.0, user_decayed_liked=2.5,
                             item_decayed_count=0.5, item_decayed_liked=0.0),
                        dict(item_id=2, liked=0)])  # none: log1p(0) and the neutral rate
  plain, decayed = fields.counter_features(features), fields.counter_features(features, decayed=True)
  assert plain.shape == [2, fields.COUNTER_FEATURES]
  assert decayed.shape == [2, fields.COUNTER_FEATURES + fields.DECAYED_COUNTER_FEATURES]
  np.testing.assert_array_equal(decayed[:, :fields.COUNTER_FEATURES], plain)
  np.testing.assert_allclose(decayed[:, fields.COUNTER_FEATURES:], [
      [np.log1p(3.0) / 5, (2.5 + 2.5) / (3 + 5), np.log1p(0.5) / 5, 2.5 / 5.5], [0, 0.5, 0, 0.5]], rtol=1e-6)


def test_a_window_keeps_each_rows_last_history_items_and_their_labels_and_ages():
  features = _features([dict(item_id=1, liked=1, history=[4, 5, 6], history_liked=[0, 1, 1],
                             history_age_days=[9, 3, 0]),
                        dict(item_id=2, liked=0, history=[7], history_liked=[0], history_age_days=[1]),
                        dict(item_id=3, liked=0)])
  window = fields.windowed(features, 2)
  assert window[fields.HISTORY].to_list() == [[5, 6], [7], []]
  assert window[fields.HISTORY_LIKED].to_list() == [[1, 1], [0], []]
  assert window[fields.HISTORY_AGE_DAYS].to_list() == [[3, 0], [1], []]
  np.testing.assert_allclose(fields.counter_features(window)[:, -1], [(2 + 2.5) / 7, 2.5 / 6, 0.5])
  assert fields.windowed(features, 0) is features
