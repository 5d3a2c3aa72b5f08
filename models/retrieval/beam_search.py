"""Beam search constrained by a prefix trie, in the TensorFlow graph (TIGER, Rajput et al. 2023, section
3.2, with the trie that removes the invalid IDs the paper drops after decoding).

Each step extends every beam by the codes its trie node allows, scores the extensions by the decoder's
log-probabilities (log-softmax over the position's own vocabulary) and keeps the best `beam` of them per
user; after the last position every beam is a catalog item. Items in `exclude` (a user's history) are
removed at the last step. With a beam at least as wide as the trie's widest level the search is exhaustive:
it returns exactly the top of `sequence_log_probs` over the catalog.

`next_log_probs(prefixes, position)` is the model: [R, t] prefix tokens (without BOS) -> [R, size of
`position`'s vocabulary] log-probabilities, R = users x beams (the caller tiles the encoder's output).

Example:
  rows, scores = constrained_beam_search(next_log_probs, TrieTensors(trie, layout.offsets),
                                         users=tf.shape(history)[0], beam=120, k=100, exclude=history_rows)
"""

from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from models.retrieval.trie import PrefixTrie

NextLogProbs = Callable[[tf.Tensor, int], tf.Tensor]


class TrieTensors(tf.Module):
  """A PrefixTrie's arrays as constants of the graph, with each position's token offset."""

  def __init__(self, trie: PrefixTrie, offsets: Sequence[int]):
    super().__init__()
    self.child_splits = tf.constant(trie.child_splits)
    self.child_codes = tf.constant(trie.child_codes)
    self.child_nodes = tf.constant(trie.child_nodes)
    self.leaf_rows = tf.constant(trie.leaf_rows)
    self.depth = trie.depth
    self.offsets = [int(o) for o in offsets]


def _children(trie: TrieTensors, nodes: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """[R] nodes -> (codes [R, C], child nodes [R, C], valid [R, C]), C the most children of any of them; a
  dead beam (node -1) has none."""
  starts = tf.gather(trie.child_splits, tf.maximum(nodes, 0))
  counts = tf.where(nodes >= 0, tf.gather(trie.child_splits, tf.maximum(nodes, 0) + 1) - starts, 0)
  slots = tf.range(tf.maximum(tf.reduce_max(counts), 1), dtype=tf.int64)
  valid = slots[None, :] < counts[:, None]
  edges = tf.where(valid, starts[:, None] + slots[None, :], 0)
  # Padding slots get code 0, which every position's vocabulary has (edge 0 is a first-level code).
  return tf.where(valid, tf.gather(trie.child_codes, edges), 0), tf.gather(trie.child_nodes, edges), valid


def constrained_beam_search(next_log_probs: NextLogProbs, trie: TrieTensors, users: tf.Tensor, beam: int,
                            k: tf.Tensor, exclude: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, tf.Tensor]:
  """-> (catalog rows [users, min(k, candidates)], their log-probabilities), best first per user. A row of
  -1 with score -inf where fewer items remain (k beyond the catalog, or all excluded). `exclude`: [users, H]
  catalog rows never returned (-1: padding). `beam` applies to the inner positions, `k` to the last."""
  users = tf.cast(users, tf.int32)
  nodes = tf.zeros([users, 1], tf.int64)
  scores = tf.zeros([users, 1], tf.float32)
  prefixes = tf.zeros([users, 1, 0], tf.int64)
  for position in range(trie.depth):
    width = tf.shape(nodes)[1]
    log_probs = next_log_probs(tf.reshape(prefixes, [users * width, position]), position)
    codes, child_nodes, valid = _children(trie, tf.reshape(nodes, [-1]))
    extended = tf.reshape(scores, [-1, 1]) + tf.gather(log_probs, codes, batch_dims=1)
    extended = tf.where(valid, extended, -np.inf)
    if position == trie.depth - 1 and exclude is not None:
      leaf_rows = tf.gather(trie.leaf_rows, child_nodes)                   # [R, C]
      per_user = tf.reshape(leaf_rows, [users, -1])                         # [users, width * C]
      seen = tf.reduce_any(per_user[:, :, None] == tf.cast(exclude, tf.int64)[:, None, :], axis=2)
      extended = tf.where(tf.reshape(seen, tf.shape(extended)), -np.inf, extended)
    children = tf.shape(codes)[1]
    flat = tf.reshape(extended, [users, width * children])
    keep = beam if position < trie.depth - 1 else tf.cast(k, tf.int32)
    best = tf.math.top_k(flat, tf.minimum(keep, width * children))
    parents = best.indices // children
    chosen_codes = tf.gather(tf.reshape(codes, [users, -1]), best.indices, batch_dims=1)
    nodes = tf.gather(tf.reshape(child_nodes, [users, -1]), best.indices, batch_dims=1)
    nodes = tf.where(tf.math.is_finite(best.values), nodes, -1)  # padding picked when too few extensions
    prefixes = tf.concat([tf.gather(prefixes, parents, batch_dims=1),
                          (chosen_codes + trie.offsets[position])[:, :, None]], axis=2)
    scores = best.values
  rows = tf.gather(trie.leaf_rows, tf.maximum(nodes, 0))
  found = nodes >= 0
  return tf.where(found, rows, tf.constant(-1, tf.int64)), scores


def sequence_log_probs(next_log_probs: NextLogProbs, sequences: tf.Tensor, offsets: Sequence[int]) -> tf.Tensor:
  """Brute force: [R, P] per-position codes -> [R] their log-probabilities (R matching the model's rows)."""
  total = tf.zeros([tf.shape(sequences)[0]], tf.float32)
  tokens = sequences + tf.constant(list(offsets), sequences.dtype)[None, :]
  for position in range(len(offsets)):
    log_probs = next_log_probs(tokens[:, :position], position)
    total += tf.gather(log_probs, sequences[:, position], batch_dims=1)
  return total
