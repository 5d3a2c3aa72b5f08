"""A prefix trie of a catalog's Semantic IDs, as flat arrays a TensorFlow graph can walk.

Node 0 is the root; the children of a node are contiguous edges, sorted by code:
`child_codes[child_splits[n]:child_splits[n + 1]]` are the codes that may follow node n's prefix and
`child_nodes[...]` the nodes they lead to. A node at depth P (a whole Semantic ID) maps to its catalog
row in `leaf_rows` (-1 for inner nodes). Constrained decoding (beam_search.py) only ever extends a prefix
by one of its children, so every decoded sequence is an item of the catalog.

Example:
  trie = PrefixTrie.build(np.array([[0, 1, 0], [0, 2, 0], [3, 1, 0]]))
  trie.children([0])   # [1, 2]
"""

import dataclasses
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class PrefixTrie:
  child_splits: np.ndarray  # [nodes + 1] int64
  child_codes: np.ndarray   # [edges] int64
  child_nodes: np.ndarray   # [edges] int64
  leaf_rows: np.ndarray     # [nodes] int64
  depth: int

  @classmethod
  def build(cls, sequences: np.ndarray) -> "PrefixTrie":
    """From [N, P] per-position codes, one row per catalog item (rows must be distinct)."""
    sequences = np.asarray(sequences, np.int64)
    count, depth = sequences.shape
    order = np.lexsort(sequences.T[::-1]) if count else np.zeros(0, np.int64)
    ordered = sequences[order]
    # Node ids level by level: a row starts a new node at depth d + 1 where its prefix of d + 1 codes differs
    # from the previous row's.
    parents = np.zeros(count, np.int64)
    next_node, codes, nodes, parent_of = 1, [], [], []
    leaf_rows = [-1]
    for d in range(depth):
      new = np.ones(count, bool)
      if count > 1:
        new[1:] = (ordered[1:, :d + 1] != ordered[:-1, :d + 1]).any(axis=1)
      ids = next_node + np.cumsum(new) - 1
      next_node += int(new.sum())
      codes.append(ordered[new, d])
      nodes.append(ids[new])
      parent_of.append(parents[new])
      leaf_rows += ([-1] * int(new.sum())) if d < depth - 1 else order[new].tolist()
      parents = ids
    codes, nodes, parent_of = (np.concatenate(x) if x else np.zeros(0, np.int64) for x in (codes, nodes, parent_of))
    # Edges grouped by parent (parents are numbered in the same sorted order, so this keeps codes sorted).
    by_parent = np.argsort(parent_of, kind="stable")
    splits = np.zeros(next_node + 1, np.int64)
    np.add.at(splits, parent_of + 1, 1)
    return cls(np.cumsum(splits), codes[by_parent], nodes[by_parent], np.asarray(leaf_rows, np.int64), depth)

  @property
  def num_nodes(self) -> int:
    return len(self.leaf_rows)

  def node(self, prefix: Sequence[int]) -> int:
    """The node of `prefix`, -1 when no catalog item starts with it."""
    node = 0
    for code in prefix:
      start, end = self.child_splits[node], self.child_splits[node + 1]
      hit = np.flatnonzero(self.child_codes[start:end] == code)
      if not hit.size:
        return -1
      node = int(self.child_nodes[start + hit[0]])
    return node

  def children(self, prefix: Sequence[int]) -> list:
    node = self.node(prefix)
    return [] if node < 0 else self.child_codes[self.child_splits[node]:self.child_splits[node + 1]].tolist()

  def items(self) -> np.ndarray:
    """Catalog rows of every whole Semantic ID in the trie, sorted."""
    return np.sort(self.leaf_rows[self.leaf_rows >= 0])
