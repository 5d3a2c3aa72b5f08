"""SidClusterCounts: the like-rates of a candidate's Semantic-ID clusters, a counting feature that a
cold-start item has from its first interaction.

A cluster is a SID prefix: the candidate's first code, and its first two codes. Items sharing a prefix
have similar content (Singh et al. 2023, section 3.1: coarse to fine), so the share of liked
interactions with the cluster's items speaks for a new item that has no counters of its own, as its
embedding rows do for the paper's ranker.

The layer holds, per cluster, how many interactions the model was trained on and how many were liked: a
training step adds its span after training (`add`), so the counts are the model's state from span to
span, kept in its checkpoints and carried by the exported model to serving. An interaction of a span
reads its clusters' counts before the span, as the counting baselines are fitted. The warm-up spans the
whole backfill, so there each interaction reads the counts of the interactions strictly before it in
time instead (same second: file order), computed once by `causal_counts` and fed as the feature
fields.SID_CLUSTER_COUNTS.

Rates are smoothed hierarchically: the first code's towards the neutral rate, the first two codes'
towards the first code's (a fine cluster with few interactions: the coarse one speaks). Unknown items
(not in the catalog, no content codes) get the neutral rate.

Example:
  clusters = SidClusterCounts(catalog)
  rates = clusters(item_ids)                  # [B, LEVELS] like-rates, from the counts so far
  clusters.add(clusters.clusters(item_ids), labels)   # after training on a span
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from formats import interaction_features as fields
from models.ranking.catalog import Catalog, CatalogCodes

LEVELS = fields.SID_CLUSTER_LEVELS


class SidClusterCounts(tf.keras.layers.Layer):
  """item ids [n] (and content codes [n, L] of items unknown to the catalog) -> SID-cluster like-rates."""

  def __init__(self, catalog: Catalog, **kwargs):
    super().__init__(trainable=False, **kwargs)
    if catalog.codes.shape[1] < LEVELS:
      raise ValueError(f"SID-cluster like-rates need at least {LEVELS} SID levels, the catalog has "
                       f"{catalog.codes.shape[1]}")
    size = catalog.codebook_size
    self.codes = CatalogCodes(catalog)
    # Level l's cluster: its prefix as a base-K number, offset past the clusters of the levels before it.
    self._weights = tf.constant([[size ** (level - 1 - i) if i < level else 0 for level in range(1, LEVELS + 1)]
                                 for i in range(LEVELS)], tf.int64)
    sizes = [size ** level for level in range(1, LEVELS + 1)]
    self._offsets = tf.constant(np.cumsum([0] + sizes[:-1]), tf.int64)
    # Per cluster: (interactions, liked ones).
    self.counts = self.add_weight(name="counts", shape=[sum(sizes), 2], initializer="zeros", trainable=False,
                                  dtype=tf.float32)

  def clusters(self, ids: tf.Tensor, content_codes: Optional[tf.Tensor] = None) -> tf.Tensor:
    """[n, LEVELS] cluster of each level; -1 for items without codes (content codes of -1: none)."""
    codes = self.codes(ids, content_codes)[:, :LEVELS]
    known = codes[:, 0] >= 0
    return tf.where(known[:, None], tf.matmul(tf.maximum(codes, 0), self._weights) + self._offsets, -1)

  def clusters_of(self, ids: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """clusters() of many item ids [n] as an array, a chunk at a time: at a backfill's size (millions) the
    lookup's tensors for all of them at once took a gigabyte."""
    ids = np.asarray(ids, np.int64)
    parts = [self.clusters(tf.constant(ids[start:start + chunk])).numpy() for start in range(0, len(ids), chunk)]
    return np.concatenate(parts) if parts else np.zeros([0, LEVELS], np.int64)

  def lookup(self, clusters: tf.Tensor) -> tf.Tensor:
    """[n, LEVELS] clusters -> [n, LEVELS, 2] their (interactions, liked) so far; zeros for -1."""
    found = tf.gather(self.counts, tf.maximum(clusters, 0))
    return tf.where(clusters[..., None] >= 0, found, 0.0)

  def call(self, ids: tf.Tensor, content_codes: Optional[tf.Tensor] = None,
           counts: Optional[tf.Tensor] = None) -> tf.Tensor:
    """[n, LEVELS] smoothed like-rates, coarse to fine, from `counts` [n, LEVELS * 2] when given (the
    warm-up's causal ones) or else from the counts so far."""
    if counts is None:
      counts = self.lookup(self.clusters(ids, content_codes))
    counts = tf.reshape(tf.cast(counts, tf.float32), [-1, LEVELS, 2])
    rates, prior = [], tf.fill(tf.shape(counts)[:1], fields.NEUTRAL_LIKE_RATE)
    for level in range(LEVELS):
      prior = (counts[:, level, 1] + prior * fields.SMOOTHING) / (counts[:, level, 0] + fields.SMOOTHING)
      rates.append(prior)
    return tf.stack(rates, axis=1)

  def add(self, clusters: np.ndarray, labels: np.ndarray) -> None:
    """Counts the interactions with these clusters [n, LEVELS] and labels [n]; -1 clusters are skipped."""
    self.add_counts(clusters, np.ones(len(labels)), labels)

  def add_counts(self, clusters: np.ndarray, interactions: np.ndarray, liked: np.ndarray) -> None:
    """Adds `interactions` [n] of which `liked` [n] to these clusters [n, LEVELS] (-1 clusters: skipped)."""
    flat = np.asarray(clusters).reshape(-1)
    known = flat >= 0
    per_level = lambda values: np.repeat(np.asarray(values, np.float64), LEVELS)[known]
    size = self.counts.shape[0]
    self.counts.assign_add(np.stack([np.bincount(flat[known], weights=per_level(interactions), minlength=size),
                                     np.bincount(flat[known], weights=per_level(liked), minlength=size)],
                                    1).astype(np.float32))


def causal_counts(clusters: np.ndarray, labels: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
  """[n, LEVELS * 2]: per interaction and level, the (interactions, liked) of its cluster strictly before it
  in time (same timestamp: the earlier row first). Rows of -1 clusters get zeros."""
  n = len(labels)
  order = np.argsort(timestamps, kind="stable")
  position = np.empty(n, np.int64)
  position[order] = np.arange(n)
  counts = np.zeros((n, LEVELS, 2), np.float32)
  labels = np.asarray(labels, np.float64)
  for level in range(LEVELS):
    cluster = clusters[:, level]
    by_cluster = np.lexsort((position, cluster))  # grouped by cluster, in time within each
    grouped, grouped_labels = cluster[by_cluster], labels[by_cluster]
    starts = np.r_[True, grouped[1:] != grouped[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    liked_before = np.cumsum(grouped_labels) - grouped_labels
    counts[by_cluster, level, 0] = np.arange(n) - group_start
    counts[by_cluster, level, 1] = liked_before - liked_before[group_start]
    counts[cluster < 0, level] = 0
  return counts.reshape(n, LEVELS * 2)
