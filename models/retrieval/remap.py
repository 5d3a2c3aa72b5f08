"""A trained TIGER model carried across a SID refresh (models/ranking/remap.py does it for the ranker).

The model knows tokens, not items (model.py): with the same layout its checkpoint restores onto the new
catalog as it is, and with stable codes (the new RQ-VAE started from the old one) most codes keep their
meaning, so `copy` keeps every row. After an RQ-VAE trained from scratch a code's number means nothing:
`fit` starts the rows of every code token the new catalog uses (its input embedding, its output weights and
bias) and of every SID prefix it uses (its row of the prefix table) from the old rows of the items that now
carry it: the mean of their old tokens' (prefixes') rows at the same position, each item weighted by 1 +
its interactions, as the ranker's fit weighs them (a popular item's rows are the better trained). Suffix
tokens (collision indices: no meaning), user tokens and the Transformer are kept; so is a row no item of
both catalogs carries.

Where the new codes only renumber the old ones, `fit` gives the old model over the new numbers: every item
gets its old score (remap_test).

Example:
  trainer.warm_start(model, old_checkpoint_dir)       # the old model's weights, as they are
  remap(model, old_catalog, new_catalog, interactions)  # interactions: per item of new_catalog.item_ids
"""

from typing import Dict

import numpy as np
import tensorflow as tf
from scipy import sparse

from models.retrieval.model import TigerModel
from models.retrieval.sid_tokens import SidCatalog

FIT, COPY = "fit", "copy"
METHODS = (FIT, COPY)


def prefix_rows(tokens: np.ndarray, vocabulary_size: int, rows: int) -> np.ndarray:
  """[N, P] item tokens -> [N, P] the prefix table's row of each item's first 1..P tokens (model._prefix_keys)."""
  keys, key = [], np.zeros(len(tokens), np.int64)
  for position in range(tokens.shape[1]):
    key = key * vocabulary_size + tokens[:, position]
    keys.append(key)
  return np.mod(np.stack(keys, axis=1), rows)


def _averaging(new_rows: np.ndarray, old_rows: np.ndarray, weights: np.ndarray, size: int) -> sparse.csr_matrix:
  """[size, size]: row r averages the old rows paired with new row r, by `weights`; empty for unpaired rows."""
  pairs = sparse.coo_matrix((weights, (new_rows, old_rows)), shape=(size, size)).tocsr()
  totals = np.asarray(pairs.sum(axis=1)).ravel()
  return (sparse.diags(np.divide(1.0, totals, out=np.zeros(size), where=totals > 0)) @ pairs).tocsr()


def _fit(variable: tf.Variable, averaging: sparse.csr_matrix, transposed: bool = False) -> int:
  """Sets the rows of `variable` (its columns if `transposed`: a Dense kernel) that `averaging` pairs to their
  averages of the old rows; -> rows set."""
  values = variable.numpy().T if transposed else variable.numpy()
  targets = np.flatnonzero(averaging.getnnz(axis=1))
  fitted = values.copy()
  fitted[targets] = (averaging[targets] @ values.reshape(len(values), -1)).reshape((len(targets),) + values.shape[1:])
  variable.assign(fitted.T if transposed else fitted)
  return len(targets)


def remap(model: TigerModel, old: SidCatalog, new: SidCatalog, interactions: np.ndarray, method: str = FIT
          ) -> Dict[str, int]:
  """Fits `model` (restored from the model trained on `old`'s Semantic IDs) to `new`'s (`interactions`: per item
  of new.item_ids); -> what it carried: items in both catalogs, code tokens and prefix rows fitted."""
  if method not in METHODS:
    raise ValueError(f"retrieval remap method must be one of {', '.join(METHODS)}, got {method!r}")
  layout = model.layout
  if (old.num_levels, old.codebook_size) != (new.num_levels, new.codebook_size):
    raise ValueError(f"cannot remap the retrieval model: its Semantic IDs were {old.num_levels} x "
                     f"{old.codebook_size} codes, the refresh's are {new.num_levels} x {new.codebook_size}; train it "
                     "from scratch (refresh_warm_start scratch)")
  _, new_index, old_index = np.intersect1d(new.item_ids, old.item_ids, assume_unique=True, return_indices=True)
  nameable = new.retrievable(layout.suffix_size)[new_index] & old.retrievable(layout.suffix_size)[old_index]
  new_index, old_index = new_index[nameable], old_index[nameable]
  report = {"items": len(new_index), "tokens": 0, "prefix_rows": 0}
  if method == COPY or not len(new_index):
    return report
  offsets = np.asarray(layout.offsets)[None, :]
  new_tokens, old_tokens = new.sequences[new_index] + offsets, old.sequences[old_index] + offsets
  weights = 1.0 + np.asarray(interactions, np.float64)[new_index]
  codes = lambda tokens: tokens[:, :layout.num_levels].ravel()  # the suffix position's tokens are kept
  tokens = _averaging(codes(new_tokens), codes(old_tokens), np.repeat(weights, layout.num_levels),
                      layout.vocabulary_size)
  _fit(model.token_embedding.embeddings, tokens)
  _fit(model.output_layer.bias, tokens)
  report["tokens"] = _fit(model.output_layer.kernel, tokens, transposed=True)
  if model.prefix_embedding is not None:
    rows = lambda tokens: prefix_rows(tokens, layout.vocabulary_size, model.config.prefix_rows).ravel()
    report["prefix_rows"] = _fit(model.prefix_embedding.embeddings, _averaging(
        rows(new_tokens), rows(old_tokens), np.repeat(weights, layout.positions), model.config.prefix_rows))
  return report
