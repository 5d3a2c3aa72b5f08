import numpy as np
import tensorflow as tf

from models.ranking import history_attention
from models.ranking.history_attention import HistoryAttention


def test_recency_counts_back_from_each_rows_latest_item():
  history = tf.ragged.constant([[7, 8, 9], [], [5]], tf.int64)
  assert history_attention.recency(history).to_list() == [[2, 1, 0], [], [0]]


def test_shared_prefix_counts_leading_codes_only_and_none_without_codes():
  candidates = tf.constant([[1, 2, 3], [-1, -1, -1]], tf.int64)
  history = tf.constant([[[1, 2, 3], [1, 2, 0], [1, 0, 3], [0, 2, 3], [-1, -1, -1]]] * 2, tf.int64)
  assert history_attention.shared_prefix(candidates, history).numpy().tolist() == [[3, 2, 1, 0, 0], [0] * 5]


def _inputs(rng, rows, dim=4, levels=2):
  lengths = rng.integers(0, 4, rows)
  lengths[0] = 0
  vectors = tf.RaggedTensor.from_row_lengths(rng.normal(size=(lengths.sum(), dim)).astype(np.float32), lengths)
  liked = tf.RaggedTensor.from_row_lengths(rng.integers(0, 2, lengths.sum()), lengths)
  codes = tf.RaggedTensor.from_row_lengths(rng.integers(0, 2, (lengths.sum(), levels)), lengths)
  return vectors, liked, codes


def test_no_history_is_the_zero_vector_and_one_users_history_stands_for_all_candidates():
  rng = np.random.default_rng(0)
  attention = HistoryAttention(dim=4, heads=2, sid_levels=2)
  candidates = tf.constant(rng.normal(size=(3, 4)), tf.float32)
  candidate_codes = tf.constant(rng.integers(0, 2, (3, 2)))
  vectors, liked, codes = _inputs(rng, 5)
  out = attention(candidates[:1], vectors[:1], liked[:1], candidate_codes[:1], codes[:1])
  np.testing.assert_array_equal(out.numpy(), np.zeros((1, 4)))
  one_user = (vectors[1:2], liked[1:2], codes[1:2])
  broadcast = attention(candidates, *one_user[:2], candidate_codes, one_user[2])
  repeated = [tf.concat([part] * 3, 0) for part in one_user]
  np.testing.assert_allclose(broadcast.numpy(), attention(candidates, *repeated[:2], candidate_codes,
                                                          repeated[2]).numpy(), rtol=1e-6)


def test_each_input_of_a_history_item_moves_the_attention():
  rng = np.random.default_rng(1)
  attention = HistoryAttention(dim=4, heads=2, sid_levels=2)
  candidate, candidate_codes = tf.constant(rng.normal(size=(1, 4)), tf.float32), tf.constant([[0, 1]])
  vectors = tf.RaggedTensor.from_row_lengths(rng.normal(size=(2, 4)).astype(np.float32), [2])
  liked, codes = tf.ragged.constant([[1, 0]]), tf.RaggedTensor.from_row_lengths(tf.constant([[0, 1], [1, 1]]), [2])
  base = attention(candidate, vectors, liked, candidate_codes, codes).numpy()
  for changed in (dict(liked=tf.ragged.constant([[0, 0]])),  # a label
                  dict(codes=tf.RaggedTensor.from_row_lengths(tf.constant([[1, 1], [1, 1]]), [2])),  # a prefix
                  dict(vectors=tf.RaggedTensor.from_row_lengths(vectors.flat_values[::-1], [2]),
                       liked=tf.ragged.constant([[0, 1]]),
                       codes=tf.RaggedTensor.from_row_lengths(tf.constant([[1, 1], [0, 1]]), [2]))):  # the order
    inputs = {"vectors": vectors, "liked": liked, "codes": codes, **changed}
    moved = attention(candidate, inputs["vectors"], inputs["liked"], candidate_codes, inputs["codes"]).numpy()
    assert not np.allclose(moved, base)


def test_ages_fall_in_power_of_two_buckets():
  days = tf.constant([-3, 0, 1, 2, 3, 6, 7, 14, 15, 10 ** 6])
  assert history_attention.age_bucket(days).numpy().tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 15]
