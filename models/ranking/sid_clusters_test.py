import numpy as np
import pytest
import tensorflow as tf

from models.ranking.catalog import Catalog
from models.ranking.sid_clusters import SidClusterCounts, causal_counts

# Items 1 and 2 share their first code; item 3 does not. K = 4: level-2 clusters start at 4.
CATALOG = Catalog(np.array([1, 2, 3]), np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0]]), codebook_size=4)


def _naive_counts(clusters, labels, timestamps):
  """Per row and level, the (count, liked) of the rows strictly before it: earlier time, or same time and
  earlier row."""
  n, levels = clusters.shape
  counts = np.zeros((n, levels, 2))
  for i in range(n):
    for j in range(n):
      before = timestamps[j] < timestamps[i] or (timestamps[j] == timestamps[i] and j < i)
      for level in range(levels):
        if before and clusters[i, level] >= 0 and clusters[j, level] == clusters[i, level]:
          counts[i, level] += (1, labels[j])
  return counts.reshape(n, levels * 2)


def test_clusters_are_sid_prefixes_from_the_catalog_or_the_content():
  layer = SidClusterCounts(CATALOG)
  clusters = layer.clusters(tf.constant([1, 2, 3, 9, 0], tf.int64)).numpy()
  np.testing.assert_array_equal(clusters, [[0, 4], [0, 5], [1, 8], [-1, -1], [-1, -1]])
  # An item unknown to the catalog brings its codes (from the frozen RQ-VAE); -1 codes: no content.
  with_content = layer.clusters(tf.constant([9, 9, 2], tf.int64),
                                tf.constant([[0, 1, 3], [-1, -1, -1], [1, 1, 1]], tf.int64)).numpy()
  np.testing.assert_array_equal(with_content, [[0, 5], [-1, -1], [0, 5]])  # a catalog item keeps its own


def test_clusters_of_many_ids_in_chunks_equal_clusters_at_once():
  layer = SidClusterCounts(CATALOG)
  ids = np.array([3, 1, 9, 2, 2, 0, 1], np.int64)
  np.testing.assert_array_equal(layer.clusters_of(ids, chunk=3), layer.clusters(tf.constant(ids)).numpy())
  assert layer.clusters_of(np.zeros(0, np.int64)).shape == (0, 2)


def test_causal_counts_and_smoothed_rates_exactly():
  layer = SidClusterCounts(CATALOG)
  items, labels, times = np.array([1, 2, 1]), np.array([1, 1, 0]), np.array([30, 10, 20])
  clusters = layer.clusters(tf.constant(items, tf.int64)).numpy()
  counts = causal_counts(clusters, labels, times)
  # In time order: item 2 (liked), item 1 (not liked), item 1 (its own label unseen).
  np.testing.assert_array_equal(counts, [[2, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
  rates = layer(tf.constant(items, tf.int64), counts=tf.constant(counts)).numpy()
  first = [3.5 / 7, 0.5, 3.5 / 6]  # (liked + 0.5 * 5) / (count + 5)
  np.testing.assert_allclose(rates, np.stack([first, [2.5 / 6, 0.5, 3.5 / 6]], axis=1), rtol=1e-6)
  # After the span: its counts are the state; the next span reads them, unknown items the neutral rate.
  layer.add(clusters, labels)
  rates = layer(tf.constant([2, 3, 9], tf.int64)).numpy()
  first = 4.5 / 8
  np.testing.assert_allclose(rates, [[first, (1 + 5 * first) / 6], [0.5, 0.5], [0.5, 0.5]], rtol=1e-6)


def test_causal_counts_equal_counting_every_earlier_row():
  rng = np.random.default_rng(0)
  clusters = rng.integers(-1, 4, (300, 2))
  labels, times = rng.integers(0, 2, 300), rng.integers(0, 40, 300)  # many same-second ties
  np.testing.assert_array_equal(causal_counts(clusters, labels, times), _naive_counts(clusters, labels, times))
  assert causal_counts(np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0)).shape == (0, 4)


def test_later_or_reordered_rows_never_change_an_earlier_rows_counts():
  rng = np.random.default_rng(1)
  clusters, labels = rng.integers(0, 3, (100, 2)), rng.integers(0, 2, 100)
  times = rng.permutation(100)  # distinct: the order of rows in the file does not matter
  counts = causal_counts(clusters, labels, times)
  later = causal_counts(np.concatenate([clusters, rng.integers(0, 3, (50, 2))]),
                        np.concatenate([labels, rng.integers(0, 2, 50)]), np.concatenate([times, 100 + np.arange(50)]))
  np.testing.assert_array_equal(later[:100], counts)
  shuffled = rng.permutation(100)
  np.testing.assert_array_equal(causal_counts(clusters[shuffled], labels[shuffled], times[shuffled]),
                                counts[shuffled])


def test_a_catalog_with_one_sid_level_is_refused():
  with pytest.raises(ValueError, match="need at least 2 SID levels, the catalog has 1"):
    SidClusterCounts(Catalog(np.array([1]), np.array([[0]]), codebook_size=4))
