"""Counting baselines of next-item retrieval over the full catalog: recent popularity and item-to-item
co-occurrence, the floors under generative retrieval (TIGER, Rajput et al. 2023, arXiv 2305.05065, Table 1)
and the sequential models it is compared with.

Every retrieval model of the bench (these, bench/two_tower.py, bench/sasrec.py, TIGER) is a `Recommender`:
  fit(sequences)      trains from scratch on users' time-ordered interactions (`Sequences`)
  update(sequences)   goes on training with later interactions (a span); counts just add
  recommend(histories, k, exclude_history=True, users=None)
                      [n, k] item ids, best first, padded with -1 when fewer items are known

Example:
  model = CoOccurrence().fit(Sequences.of({1: [10, 20, 30], 2: [10, 20]}))
  model.recommend([np.array([10])], k=3)  # [[20, 30, -1]]: 20 followed 10 twice, 30 once; nothing else known
"""

import dataclasses
from typing import Callable, List, Mapping, Optional, Protocol, Sequence

import numpy as np

PAD = -1


@dataclasses.dataclass(frozen=True)
class Sequences:
  """Users' interactions, oldest first. items[i][:context[i]] are user i's earlier items, trained on before
  (the context of the rest); items[i][context[i]:] are the new ones to train on."""
  users: np.ndarray  # int64 [u]
  items: List[np.ndarray]  # int64 each
  timestamps: List[np.ndarray]  # int64 each, Unix seconds, aligned with items
  context: np.ndarray  # int64 [u]

  def __post_init__(self):
    if not len(self.users) == len(self.items) == len(self.timestamps) == len(self.context):
      raise ValueError(f"users, items, timestamps and context differ in length: {len(self.users)}, "
                       f"{len(self.items)}, {len(self.timestamps)}, {len(self.context)}")
    for user, items, times, context in zip(self.users, self.items, self.timestamps, self.context):
      if len(items) != len(times) or not 0 <= context <= len(items):
        raise ValueError(f"user {user}: {len(items)} items, {len(times)} timestamps, context {context}")

  @classmethod
  def of(cls, items: Mapping[int, Sequence[int]], timestamps: Optional[Mapping[int, Sequence[int]]] = None,
         context: Optional[Mapping[int, int]] = None) -> "Sequences":
    """From {user: items}; timestamps default to the item's position, context to none."""
    users = list(items)
    return cls(np.array(users, np.int64), [np.asarray(items[u], np.int64) for u in users],
               [np.asarray(timestamps[u] if timestamps else np.arange(len(items[u])), np.int64) for u in users],
               np.array([(context or {}).get(u, 0) for u in users], np.int64))

  def new_items(self) -> np.ndarray:
    return np.concatenate([items[c:] for items, c in zip(self.items, self.context)] + [np.zeros(0, np.int64)])

  def new_timestamps(self) -> np.ndarray:
    return np.concatenate([times[c:] for times, c in zip(self.timestamps, self.context)] + [np.zeros(0, np.int64)])


class Recommender(Protocol):
  """What the bench (bench/retrieval.py) runs: fit, then per span recommend before update."""

  def fit(self, sequences: Sequences) -> "Recommender":
    ...

  def update(self, sequences: Sequences) -> "Recommender":
    ...

  def recommend(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool = True,
                users: Optional[np.ndarray] = None) -> np.ndarray:
    ...


def first_k(ranked: np.ndarray, history: np.ndarray, k: int, exclude_history: bool) -> np.ndarray:
  """The first k distinct items of `ranked` (less the history when exclude_history), padded with PAD."""
  _, first = np.unique(ranked, return_index=True)
  ranked = ranked[np.sort(first)]
  if exclude_history:
    ranked = ranked[~np.isin(ranked, history)]
  return np.pad(ranked[:k], (0, max(0, k - len(ranked))), constant_values=PAD)


class MostPopular:
  """The items most interacted with recently: within `window_seconds` before the latest interaction seen,
  else among the most recent `recent_fraction` of the interactions seen (default: the last 10% of the
  training data, a window that grows with each update; 1.0 counts them all). Ties, and the items a small
  window leaves out, go by all-time counts, then by the smaller id."""

  def __init__(self, window_seconds: Optional[int] = None, recent_fraction: float = 0.1):
    if window_seconds is not None and window_seconds <= 0:
      raise ValueError(f"window_seconds must be positive, got {window_seconds}")
    if not 0 < recent_fraction <= 1:
      raise ValueError(f"recent_fraction must be in (0, 1], got {recent_fraction}")
    self.window_seconds, self.recent_fraction = window_seconds, recent_fraction
    self._items = self._times = np.zeros(0, np.int64)
    self.ranking = np.zeros(0, np.int64)  # every item seen, best first
    self._ids = self._ranks = np.zeros(0, np.int64)  # sorted ids and their places in `ranking`

  def fit(self, sequences: Sequences) -> "MostPopular":
    self._items = self._times = np.zeros(0, np.int64)
    return self.update(sequences)

  def update(self, sequences: Sequences) -> "MostPopular":
    self._items = np.concatenate([self._items, sequences.new_items()])
    self._times = np.concatenate([self._times, sequences.new_timestamps()])
    self._ids, all_time = np.unique(self._items, return_counts=True)
    if not len(self._ids):
      self.ranking = self._ranks = self._ids
      return self
    if self.window_seconds is not None:
      recent = self._items[self._times > self._times.max() - self.window_seconds]
    else:
      newest_first = np.argsort(-self._times, kind="stable")
      recent = self._items[newest_first[:int(np.ceil(self.recent_fraction * len(self._items)))]]
    window = np.bincount(np.searchsorted(self._ids, recent), minlength=len(self._ids))
    order = np.lexsort((self._ids, -all_time, -window))
    self.ranking = self._ids[order]
    self._ranks = np.argsort(order)
    return self

  def rank(self, items: np.ndarray) -> np.ndarray:
    """Places of seen items in `ranking` (0: the most popular)."""
    return self._ranks[np.searchsorted(self._ids, items)]

  def recommend(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool = True,
                users: Optional[np.ndarray] = None) -> np.ndarray:
    del users  # the same for everyone
    return np.array([first_k(self.ranking[:k + len(h)], h, k, exclude_history) for h in histories],
                    np.int64).reshape(len(histories), k)


_ID_BITS = 32


class CoOccurrence:
  """Item-to-item co-occurrence: how often b followed a within the next `window` items of a user's
  time-ordered sequence. Recommends the items that followed the history's last item most often (ties by
  popularity), then the most popular (`popular`, all-time counts by default) to fill k. The default window,
  3, did best on ml-latest-small's leave-one-out validation (Recall@10 0.074, 0.093, 0.103 and 0.097 for
  windows 1, 2, 3 and 5)."""

  def __init__(self, window: int = 3, popular: Optional[MostPopular] = None):
    if window < 1:
      raise ValueError(f"window must be at least 1, got {window}")
    self.window = window
    self.popular = popular or MostPopular(recent_fraction=1.0)
    self._pairs = np.zeros(0, np.int64)  # sorted a << 32 | b
    self._counts = np.zeros(0, np.int64)

  def fit(self, sequences: Sequences) -> "CoOccurrence":
    self._pairs, self._counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
    return self.update(sequences)

  def update(self, sequences: Sequences) -> "CoOccurrence":
    self.popular.update(sequences)
    new = [self._pairs]
    for items, context in zip(sequences.items, sequences.context):
      if len(items) and not 0 <= items.min() <= items.max() < 1 << (_ID_BITS - 1):
        raise ValueError(f"item ids must be in [0, 2^{_ID_BITS - 1}), got {items.min()}..{items.max()}")
      for distance in range(1, self.window + 1):
        later = np.arange(max(distance, context), len(items))  # the pair's second item is a new one
        new.append(items[later - distance] << _ID_BITS | items[later])
    pairs, inverse = np.unique(np.concatenate(new), return_inverse=True)
    counts = np.concatenate([self._counts, np.ones(len(inverse) - len(self._counts), np.int64)])
    self._pairs, self._counts = pairs, np.bincount(inverse, counts, len(pairs)).astype(np.int64)
    return self

  def following(self, item: int) -> np.ndarray:
    """The items that followed `item`, most often first (ties: the more popular)."""
    lo, hi = np.searchsorted(self._pairs, [item << _ID_BITS, (item + 1) << _ID_BITS])
    after = self._pairs[lo:hi] & ((1 << _ID_BITS) - 1)
    return after[np.lexsort((self.popular.rank(after), -self._counts[lo:hi]))]

  def recommend(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool = True,
                users: Optional[np.ndarray] = None) -> np.ndarray:
    del users
    rows = []
    for history in histories:
      after = self.following(int(history[-1])) if len(history) else np.zeros(0, np.int64)
      rows.append(first_k(np.concatenate([after, self.popular.ranking[:k + len(history) + len(after)]]),
                          history, k, exclude_history))
    return np.array(rows, np.int64).reshape(len(histories), k)


class IdTable:
  """Rows of an embedding table for a catalog's ids (items or users): row 0 pads and takes ids outside the
  catalog, the ids take rows 1..n in sorted order. `known` marks the rows trained on: a model of ids knows
  nothing of the others, so only known items are recommended."""

  def __init__(self, catalog: np.ndarray):
    self.ids = np.unique(np.asarray(catalog, np.int64))
    self.known = np.zeros(len(self.ids) + 1, bool)

  @property
  def size(self) -> int:
    return len(self.ids) + 1

  def rows(self, ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids, np.int64)
    if not len(self.ids):
      return np.zeros_like(ids)
    places = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
    return np.where(self.ids[places] == ids, places + 1, 0)

  def learn(self, ids: np.ndarray) -> None:
    self.known[self.rows(ids)] = True
    self.known[0] = False

  def padded(self, histories: Sequence[np.ndarray], length: int) -> np.ndarray:
    """[n, length] rows of each history's last `length` ids, left-padded with row 0."""
    out = np.zeros((len(histories), length), np.int64)
    for i, history in enumerate(histories):
      rows = self.rows(history[len(history) - length:] if len(history) > length else history)
      out[i, length - len(rows):] = rows
    return out

  def top_k(self, scores: np.ndarray, histories: Sequence[np.ndarray], k: int,
            exclude_history: bool = True) -> np.ndarray:
    """[n, k] ids of the known rows with the highest `scores` [n, size] (less the histories' items when
    exclude_history), best first, padded with PAD."""
    scores = np.array(scores, np.float32)
    scores[:, ~self.known] = -np.inf
    if exclude_history:
      for i, history in enumerate(histories):
        scores[i, self.rows(history)] = -np.inf
    width = min(k, self.size)
    top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1, kind="stable"), 1)
    ids = np.where(np.isfinite(np.take_along_axis(scores, top, 1)), self.ids[np.maximum(top - 1, 0)], PAD)
    return np.pad(ids, ((0, 0), (0, k - width)), constant_values=PAD)

  def top_k_chunked(self, scores: Callable[[slice], np.ndarray], histories: Sequence[np.ndarray], k: int,
                    exclude_history: bool = True, chunk: int = 1024) -> np.ndarray:
    """top_k of `histories`, `chunk` at a time: scores(part) gives the [len, size] scores of histories[part]."""
    rows = [np.zeros((0, k), np.int64)]
    for start in range(0, len(histories), chunk):
      part = slice(start, start + chunk)
      rows.append(self.top_k(scores(part), histories[part], k, exclude_history))
    return np.concatenate(rows)
