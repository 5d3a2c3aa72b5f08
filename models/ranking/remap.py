"""Remap a trained ranker onto refreshed Semantic IDs, instead of training a new one from scratch.

A SID refresh gives items new SIDs and a new piece vocabulary, so every row of the item table changes
meaning. Retraining from scratch over all history is the dominant cost of a refresh; work on generative
retrieval (arXiv 2604.13273) maps refreshed SIDs onto the existing model and warm-starts it instead. `remap`
does that for this ranker, from the old model (old catalog and vocabulary) into a new one built on the new
catalog and vocabulary:
- every variable whose meaning does not hang on the SIDs is copied: the towers, cross layers, user table,
  history attention;
- a row of the new item table whose piece the old vocabulary had (the same codes at the same levels, or the
  same row for hashed pieces) starts from the old row; with `carry_pieces` it is kept as it was, so an item
  whose SID and pieces did not change keeps its vector. That holds when codes kept their meaning (stable
  codes: the new RQ-VAE started from the old one); across an RQ-VAE trained from scratch a code's number says
  nothing, so by default those rows are fitted too, starting from (and pulled towards) the copied values;
- the other rows are fitted so that each item's new vector (the sum of its pieces) is its old vector,
  items weighted by 1 + their interactions (a popular item's vector is the better trained, and every item
  counts a little): `lstsq`, weighted least squares with a small ridge towards the new rows' initial
  values (a row no item needs stays as initialised); or `mean`, each item's remaining vector split equally
  among its new pieces and averaged over the items using a piece;
- the SID-cluster counts are re-keyed: each item's interactions counted under its new prefixes.

Example:
  new = model.build(config, new_catalog, new_spm_model)
  report = remap(old, new, item_ids, interactions, liked)   # then train `new` on recent spans only
"""

from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import lsqr

from models.ranking import model as ranking
from models.ranking.items import PieceItems
from models.sid_adaptation.tokenizers import SidTokenizer

METHODS = ("lstsq", "mean")
# The ridge's weight against items of weight 1 (weights are scaled to a mean of 1).
RIDGE = 1e-3


def carried_rows(old: SidTokenizer, new: SidTokenizer) -> np.ndarray:
  """Per row of `new`, the row of `old` that stands for the same piece (-1: none): the same codes at the same
  levels (SPM, N-grams), or the same row where pieces are hashed (prefix N-grams, random hashing)."""
  if old.kind != new.kind:
    raise ValueError(f"cannot remap a {old.kind} item table onto a {new.kind} one")
  if old.hashed and old.num_rows != new.num_rows:
    raise ValueError(f"cannot remap hashed pieces across table sizes ({old.num_rows} -> {new.num_rows} rows)")
  old_rows = {old.piece_key(row): row for row in range(old.num_rows)}
  return np.array([old_rows.get(new.piece_key(row), -1) for row in range(new.num_rows)], np.int64)


def _table(items: PieceItems) -> tf.Variable:
  [table] = items.embedding.embedding_tables.values()
  return table


def fit_rows(pieces: tf.RaggedTensor, targets: np.ndarray, weights: np.ndarray, initial: np.ndarray,
             fixed: np.ndarray, method: str = "lstsq") -> np.ndarray:
  """Rows [R, d] such that each item's summed rows (`pieces` [N, (p)]) approach its `targets` [N, d], item
  weighted by `weights` [N]; rows marked `fixed` [R] keep their `initial` value, the others start from it.
  A row no weighted item uses stays as it was."""
  if method not in METHODS:
    raise ValueError(f"unknown remap method {method!r}; expected one of {', '.join(METHODS)}")
  rows = initial.astype(np.float64).copy()
  lengths = pieces.row_lengths().numpy()
  flat = pieces.flat_values.numpy()
  item_of = np.repeat(np.arange(len(lengths)), lengths)
  incidence = csr_matrix((np.ones(len(flat)), (item_of, flat)), shape=(len(lengths), len(rows)))
  # What the fixed rows leave for the others to give.
  residual = targets - incidence[:, fixed] @ rows[fixed]
  free = np.flatnonzero(~fixed)
  used = incidence[:, free]
  weights = np.where(np.asarray(used.sum(1)).ravel() > 0, weights, 0.0)
  if not weights.any():
    return rows
  weights = weights / weights[weights > 0].mean()
  if method == "mean":
    shares = residual / np.maximum(np.asarray(used.sum(1)), 1)
    weighted = used.multiply(weights[:, None]).tocsc()
    totals = np.asarray(weighted.sum(0)).ravel()
    reached = totals > 0
    rows[free[reached]] = (weighted.T @ shares)[reached] / totals[reached, None]
    return rows
  scaled = used.multiply(np.sqrt(weights)[:, None]).tocsr()
  # Solved for the change from the initial rows: the ridge pulls towards them, not towards zero. The rows are
  # a starting point for training: a relative tolerance of 1e-6 (half the iterations of 1e-10) is plenty.
  start = residual - used @ rows[free]
  for column in range(rows.shape[1]):
    rows[free, column] += lsqr(scaled, np.sqrt(weights) * start[:, column], damp=np.sqrt(RIDGE),
                               atol=1e-6, btol=1e-6)[0]
  return rows


def window(timestamps: np.ndarray, count: int) -> Tuple[Optional[np.ndarray], np.ndarray]:
  """A remapped model's training window: (the latest `count` interactions it trains on, None for all; a mask
  of those before them, whose counts weigh the remap)."""
  keep = ranking.most_recent(timestamps, count)
  return keep, (~keep if keep is not None else np.zeros(len(timestamps), bool))


def item_counts(item_ids: np.ndarray, interacted: np.ndarray, labels: Optional[np.ndarray] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
  """Interactions and liked ones per item of `item_ids` (sorted, unique) among the interactions with the items
  `interacted`, labelled `labels` (1: liked; None: none liked); interactions with other items are left out."""
  rows = np.searchsorted(item_ids, interacted)
  found = rows < len(item_ids)
  found[found] = item_ids[rows[found]] == interacted[found]
  interactions = np.bincount(rows[found], minlength=len(item_ids)).astype(np.float64)
  if labels is None:
    return interactions, np.zeros(len(item_ids))
  return interactions, np.bincount(rows[found], weights=np.asarray(labels, np.float64)[found], minlength=len(item_ids))


def _shared_variables(model: ranking.RankingModel) -> List[tf.Variable]:
  """The variables whose meaning does not hang on the SIDs, in a fixed order."""
  own = {_table(model.items).ref()} if isinstance(model.items, PieceItems) else set()
  if model.sid_clusters is not None:
    own.add(model.sid_clusters.counts.ref())
  return [v for v in model.variables if v.ref() not in own]


def remap(old: ranking.RankingModel, new: ranking.RankingModel, item_ids: np.ndarray, interactions: np.ndarray,
          liked: np.ndarray, method: str = "lstsq", carry_pieces: bool = False) -> Dict[str, float]:
  """Starts `new` (built on the refreshed catalog and vocabulary) from `old`, as the module docstring says.
  `item_ids` [n] with their `interactions` and `liked` counts so far (the feature state's item counters) weight
  the fit and re-key the SID-cluster counts.
  Returns what was carried: how many variables beside the SID tables, item-table rows, and rows copied."""
  mismatch = {k: (v, getattr(new.config, k)) for k, v in ranking.architecture(old.config).items()
              if v != ranking.architecture(new.config)[k]}
  if mismatch:
    raise ValueError(f"cannot remap across an architecture change: (old, new) differ in {mismatch}")
  shared_old, shared_new = _shared_variables(old), _shared_variables(new)
  if len(shared_old) != len(shared_new):
    raise ValueError(f"cannot remap: the old model has {len(shared_old)} variables beside its SID tables, the new "
                     f"one {len(shared_new)}")
  for source, target in zip(shared_old, shared_new):
    if source.shape != target.shape:
      raise ValueError(f"cannot remap {source.name} {source.shape} onto {target.name} {target.shape}")
    target.assign(source)
  report = {"shared_variables": len(shared_new)}
  if isinstance(new.items, PieceItems):
    report.update(_remap_table(old.items, new.items, item_ids, interactions, method, carry_pieces))
  if new.sid_clusters is not None:
    new.sid_clusters.counts.assign(tf.zeros_like(new.sid_clusters.counts))
    new.sid_clusters.add_counts(new.sid_clusters.clusters_of(item_ids), interactions, liked)
  return report


def _remap_table(old: PieceItems, new: PieceItems, item_ids: np.ndarray, interactions: np.ndarray,
                 method: str, carry_pieces: bool) -> Dict[str, float]:
  ids = tf.constant(item_ids, tf.int64)
  old_pieces = old.pieces(ids)
  old_vectors = tf.reduce_sum(tf.gather(_table(old), old_pieces), axis=1).numpy()
  weights = np.where(old_pieces.row_lengths().numpy() > 0, 1.0 + interactions, 0.0)
  carried = carried_rows(old.tokenizer, new.tokenizer)
  table = _table(new)
  initial = table.numpy()
  copied = carried >= 0
  initial[copied] = _table(old).numpy()[carried[copied]]
  fixed = copied if carry_pieces else np.zeros_like(copied)
  table.assign(fit_rows(new.pieces(ids), old_vectors, weights, initial, fixed, method).astype(np.float32))
  return {"rows": int(len(carried)), "rows_copied": int(fixed.sum())}
