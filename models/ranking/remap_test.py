import numpy as np
import pytest
import tensorflow as tf

from formats import interaction_features as fields
from models.ranking import model as ranking
from models.ranking import remap
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from models.sid_adaptation import spm, tokenizers

L, K, N = 3, 8, 40
OLD_CODES = np.random.default_rng(0).integers(0, K - 1, (N, L))  # code K - 1 of level 1 unused before
MOVED = 5  # item 5 gets a new SID under a first code nobody had
NEW_CODES = OLD_CODES.copy()
NEW_CODES[MOVED - 1] = [K - 1, 0, 0]
INTERACTIONS = np.random.default_rng(1).integers(0, 30, N).astype(np.float64)
LIKED = np.floor(INTERACTIONS * np.random.default_rng(2).random(N))
CONFIG = RankingConfig(representation="spm", table_rows=40, embedding_dim=4, hidden_units=(8,), item_dropout=0)


def _features(items: np.ndarray, rng: np.random.Generator) -> dict:
  size = len(items)
  history = tf.ragged.constant([rng.choice(items, rng.integers(1, 4)).tolist() for _ in range(size)], tf.int64)
  per_item = lambda high: history.with_flat_values(tf.constant(rng.integers(0, high, len(history.flat_values))))
  counters = {name: tf.constant(rng.integers(0, 20, size).astype(
      np.float32 if name.endswith("rating_sum") else np.int64)) for name in (*fields.USER_COUNTERS,
                                                                             *fields.ITEM_COUNTERS)}
  return {fields.ITEM_ID: tf.constant(items), fields.CURRENT_ITEM: tf.constant(rng.choice(items, size)),
          fields.HISTORY: history, fields.HISTORY_LIKED: per_item(2), fields.HISTORY_AGE_DAYS: per_item(50),
          fields.LABEL: tf.constant(rng.integers(0, 2, size)), **counters}


@pytest.fixture(scope="module")
def old_model():
  catalog = Catalog(np.arange(1, N + 1), OLD_CODES, K)
  model = ranking.build(CONFIG, catalog, spm.train(OLD_CODES, INTERACTIONS + 1, L, K, vocab_size=CONFIG.table_rows))
  rng = np.random.default_rng(3)
  data = [_features(rng.integers(1, N + 1, 64), rng) for _ in range(10)]
  model.fit(tf.data.Dataset.from_tensor_slices({k: tf.concat([b[k] for b in data], 0) for k in data[0]}).batch(64),
            verbose=0)
  model.sid_clusters.add_counts(model.sid_clusters.clusters_of(np.arange(1, N + 1)), INTERACTIONS, LIKED)
  return model


def _new_model(spm_model: bytes, codes: np.ndarray = NEW_CODES):
  return ranking.build(RankingConfig.from_dict({**CONFIG.__dict__, "seed": 7}), Catalog(np.arange(1, N + 1), codes, K),
                       spm_model)


def test_a_remapped_model_scores_items_whose_sid_did_not_change_as_the_old_model_did(old_model):
  # The old vocabulary over the new SIDs: every piece is an old one, so every row is copied.
  new = _new_model(old_model.items.tokenizer.model)
  # Items away from the moved one's clusters, before and after, in candidates, current items and histories.
  clear = np.array([i for i in range(1, N + 1) if OLD_CODES[i - 1, 0] != OLD_CODES[MOVED - 1, 0]])
  batch = _features(clear, np.random.default_rng(4))
  before = new(batch).numpy()
  report = remap.remap(old_model, new, np.arange(1, N + 1), INTERACTIONS, LIKED, carry_pieces=True)
  assert report["rows_copied"] == report["rows"] == old_model.items.tokenizer.num_rows
  np.testing.assert_allclose(new(batch).numpy(), old_model(batch).numpy(), rtol=1e-6, atol=1e-7)
  assert np.abs(before - old_model(batch).numpy()).max() > 1e-3  # not so before the remap

  # The SID-cluster counts re-keyed by the new prefixes: the same totals per level; the moved item's counts
  # left its old clusters for its new one.
  old_counts, new_counts = old_model.sid_clusters.counts.numpy(), new.sid_clusters.counts.numpy()
  np.testing.assert_allclose(new_counts.sum(0), old_counts.sum(0))
  [[old_coarse, _]], [[new_coarse, _]] = (model.sid_clusters.clusters_of(np.array([MOVED]))
                                          for model in (old_model, new))
  np.testing.assert_allclose(new_counts[new_coarse], [INTERACTIONS[MOVED - 1], LIKED[MOVED - 1]])
  np.testing.assert_allclose(old_counts[old_coarse] - new_counts[old_coarse],
                             [INTERACTIONS[MOVED - 1], LIKED[MOVED - 1]])


def test_a_new_vocabulary_copies_the_pieces_it_shares_and_fits_the_others(old_model):
  # Every other item gets a new SID; the vocabulary learned on the new SIDs has pieces the old one had not.
  codes = OLD_CODES.copy()
  codes[::2] = np.random.default_rng(8).integers(0, K, (N // 2, L))
  new = _new_model(spm.train(codes, INTERACTIONS + 1, L, K, vocab_size=CONFIG.table_rows), codes)
  batch = _features(np.arange(1, N + 1), np.random.default_rng(5))
  report = remap.remap(old_model, new, np.arange(1, N + 1), INTERACTIONS, LIKED, carry_pieces=True)
  carried = remap.carried_rows(old_model.items.tokenizer, new.items.tokenizer)
  assert 0 < report["rows_copied"] == (carried >= 0).sum() < report["rows"]
  old_table, new_table = (remap._table(m.items).numpy() for m in (old_model, new))
  np.testing.assert_array_equal(new_table[carried >= 0], old_table[carried[carried >= 0]])
  for row in np.flatnonzero(carried >= 0)[:20]:
    assert new.items.tokenizer.piece_codes(row) == old_model.items.tokenizer.piece_codes(carried[row])
  # Item vectors move less from the old model's than the new model's initial rows would.
  ids = tf.constant(np.arange(1, N + 1))
  vectors = lambda model, table: tf.reduce_sum(tf.gather(table, model.items.pieces(ids)), axis=1).numpy()
  old_vectors = vectors(old_model, old_table)
  fitted = np.abs(vectors(new, new_table) - old_vectors).mean()
  fresh = _new_model(new.items.tokenizer.model, codes)
  fresh(batch)
  assert fitted < 0.5 * np.abs(vectors(fresh, remap._table(fresh.items).numpy()) - old_vectors).mean()


def test_fit_rows_solves_for_the_free_rows_only():
  # Items: [row 0 (fixed), row 1], [row 1], [rows 2, 3]; row 4 is used by none.
  pieces = tf.ragged.constant([[0, 1], [1], [2, 3]], tf.int64)
  initial = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [9.0, 9.0]])
  fixed = np.array([True, False, False, False, False])
  targets = np.array([[3.0, 1.0], [2.0, 1.0], [4.0, -2.0]])  # consistent: row 1 = (2, 1)
  weights = np.array([1.0, 3.0, 1.0])
  rows = remap.fit_rows(pieces, targets, weights, initial, fixed, "lstsq")
  np.testing.assert_allclose(rows[[0, 4]], initial[[0, 4]])
  # Up to the ridge's shrinkage, a few times RIDGE relative.
  np.testing.assert_allclose(rows[1], [2.0, 1.0], rtol=5 * remap.RIDGE)
  np.testing.assert_allclose(rows[2] + rows[3], [4.0, -2.0], rtol=5 * remap.RIDGE)
  np.testing.assert_allclose(rows[2], rows[3], rtol=1e-6)  # the ridge splits what the data cannot tell apart
  rows = remap.fit_rows(pieces, targets, weights, initial, fixed, "mean")
  # Row 1: item 1 leaves (2, 1) after the fixed row, item 2 gives (2, 1); rows 2 and 3 take half of item 3's.
  np.testing.assert_allclose(rows, [[1, 0], [2, 1], [2, -1], [2, -1], [9, 9]])
  with pytest.raises(ValueError, match="unknown remap method 'median'"):
    remap.fit_rows(pieces, targets, weights, initial, fixed, "median")


def test_what_cannot_be_remapped_is_refused(old_model):
  unigram = tokenizers.create("unigram", L, K)
  with pytest.raises(ValueError, match="cannot remap a spm item table onto a unigram one"):
    remap.carried_rows(old_model.items.tokenizer, unigram)
  with pytest.raises(ValueError, match=r"across table sizes \(64 -> 128 rows\)"):
    remap.carried_rows(tokenizers.create("prefix_ngram", L, K, 64), tokenizers.create("prefix_ngram", L, K, 128))
  wider = ranking.build(RankingConfig.from_dict({**CONFIG.__dict__, "hidden_units": (16,)}),
                        Catalog(np.arange(1, N + 1), NEW_CODES, K), old_model.items.tokenizer.model)
  with pytest.raises(ValueError, match=r"architecture change: \(old, new\) differ in \{'hidden_units'"):
    remap.remap(old_model, wider, np.arange(1, N + 1), INTERACTIONS, LIKED)


def test_item_counts_count_each_catalog_items_interactions_and_likes():
  interactions, liked = remap.item_counts(np.array([2, 5, 9]), np.array([5, 9, 5, 7, 11, 2, 0]),
                                          np.array([1, 0, 1, 1, 1, 0, 1]))
  assert interactions.tolist() == [1, 2, 1] and liked.tolist() == [0, 2, 0]  # items 7, 11 and 0 are not listed
  assert remap.item_counts(np.array([2, 5, 9]), np.array([5, 9, 5]))[1].tolist() == [0, 0, 0]  # no labels
