"""Full-catalog retrieval metrics: Recall@K and NDCG@K of one next item per example (TIGER, Table 1).

Every item of the catalog competes (no sampled negatives): a recommender returns its top items, and an
example counts as a hit at K when its next item is among the first K.

Example:
  metrics = sliced_metrics(recommended=[[5, 3, 9], [2, 7, 1]], targets=[3, 4],
                           masks={"overall": np.array([True, True])}, cutoffs=(1, 3))
  # {"overall": {"examples": 2, "recall@1": 0.0, "ndcg@1": 0.0, "recall@3": 0.5, "ndcg@3": 0.315...}}
"""

from typing import Dict, Optional, Sequence

import numpy as np

CUTOFFS = (5, 10)
OVERALL = "overall"
NEW_ITEMS = "new_items"  # next items first seen in the evaluated span (or absent from the training data)


def hit_ranks(recommended: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """[n] 0-based rank of each target in its row of `recommended` [n, k] (padding: -1), k when absent."""
  recommended, targets = np.asarray(recommended), np.asarray(targets)
  if recommended.ndim != 2 or len(recommended) != len(targets):
    raise ValueError(f"recommended must be [examples, k] with one row per target, got {recommended.shape} "
                     f"for {len(targets)} targets")
  hits = recommended == targets[:, None]
  return np.where(hits.any(axis=1), hits.argmax(axis=1), recommended.shape[1])


def metrics(ranks: np.ndarray, cutoffs: Sequence[int] = CUTOFFS) -> Dict[str, float]:
  """Recall@K and NDCG@K (one relevant item: 1 / log2(rank + 2) when it is in the top K) over `ranks`."""
  result: Dict[str, float] = {"examples": int(len(ranks))}
  for k in cutoffs:
    hit = ranks < k
    result[f"recall@{k}"] = float(hit.mean()) if len(ranks) else float("nan")
    result[f"ndcg@{k}"] = (float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
                           if len(ranks) else float("nan"))
  return result


def sliced_metrics(recommended: np.ndarray, targets: np.ndarray, masks: Dict[str, np.ndarray],
                   cutoffs: Sequence[int] = CUTOFFS) -> Dict[str, Dict[str, float]]:
  """metrics() on each slice of `masks` (name -> bool [n])."""
  if max(cutoffs) > np.asarray(recommended).shape[1]:
    raise ValueError(f"Recall@{max(cutoffs)} needs at least {max(cutoffs)} recommendations per example")
  ranks = hit_ranks(recommended, targets)
  return {name: metrics(ranks[np.asarray(mask, bool)], cutoffs) for name, mask in masks.items()}


def sample(count: int, limit: int, seed: int) -> Optional[np.ndarray]:
  """Marks `limit` of `count` examples at random, the same for the same arguments; None (all) when there
  are no more than `limit` or `limit` is 0."""
  if not limit or count <= limit:
    return None
  keep = np.zeros(count, bool)
  keep[np.random.default_rng(seed).choice(count, limit, replace=False)] = True
  return keep
