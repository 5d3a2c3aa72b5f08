import numpy as np
import pytest
import tensorflow as tf

from models.ranking import model as ranking
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from models.sid_adaptation import spm

L, K, N = 2, 8, 40


CODES = np.random.default_rng(0).integers(0, K, (N, L))
LIKED = CODES[:, 0] < K // 2  # item i is liked iff its coarse code is small: learnable by every arm


@pytest.fixture(scope="module")
def catalog():
  content = np.concatenate([np.eye(K)[CODES[:, 0]], np.random.default_rng(1).normal(size=(N, 2))], axis=1)
  return Catalog(item_ids=np.arange(1, N + 1), codes=CODES, codebook_size=K, content=content.astype(np.float32))


@pytest.fixture(scope="module")
def spm_model(catalog):
  return spm.train(catalog.codes, np.arange(N) + 1, L, K, vocab_size=24)


def _batch(rng, size=64):
  """Labels follow the candidate item (LIKED), with random current items and histories."""
  items = rng.integers(1, N + 1, size)
  history = tf.ragged.constant([rng.integers(1, N + 1, rng.integers(0, 4)).tolist() for _ in range(size)],
                               dtype=tf.int64)
  return {"item_id": tf.constant(items), "current_item": tf.constant(rng.integers(0, N + 1, size)),
          "history": history, "liked": tf.constant(LIKED[items - 1].astype(np.int64))}


def _dataset(seed=0, batches=20):
  rng = np.random.default_rng(seed)
  data = [_batch(rng) for _ in range(batches)]
  return tf.data.Dataset.from_generator(lambda: iter(data), output_signature={
      "item_id": tf.TensorSpec([None], tf.int64), "current_item": tf.TensorSpec([None], tf.int64),
      "history": tf.RaggedTensorSpec([None, None], tf.int64), "liked": tf.TensorSpec([None], tf.int64)})


ARMS = [dict(representation="random_hash", table_rows=1024), dict(representation="dense"),
        dict(representation="dense", width_multiplier=1.5), dict(representation="unigram"),
        dict(representation="bigram"), dict(representation="spm", table_rows=24),
        dict(representation="prefix_ngram", table_rows=32)]


@pytest.mark.parametrize("arm", ARMS, ids=lambda a: RankingConfig(**a).name.rsplit("+", 1)[0])
@pytest.mark.parametrize("use_history", [True, False])
def test_each_representation_learns_a_learnable_label(arm, use_history, catalog, spm_model):
  config = RankingConfig(**arm, use_history=use_history, embedding_dim=8, hidden_units=(16,),
                         learning_rate=0.01, epochs=1)
  model = ranking.build(config, catalog, spm_model)
  batch = _batch(np.random.default_rng(1))
  assert model(batch).shape == [64]
  model.fit(_dataset().repeat(5), verbose=0)
  held_out = model.evaluate(_dataset(seed=9, batches=4), verbose=0, return_dict=True)
  assert held_out["auc"] > 0.9, held_out
  tower_input = model.tower.layers[0].kernel.shape[0]
  item_dim = K + 2 if arm["representation"] == "dense" else 8
  assert tower_input == item_dim * (3 if use_history else 2)
  assert model.tower.layers[0].kernel.shape[1] == int(16 * arm.get("width_multiplier", 1))


def test_embedding_tables_use_the_embedding_optimizer(catalog):
  model = ranking.build(RankingConfig(representation="unigram", embedding_dim=4, hidden_units=(8,)), catalog)
  before = model.items.embedding.embedding_tables
  before = {name: table.numpy().copy() for name, table in before.items()}
  model.fit(_dataset(batches=2), verbose=0)
  assert model.embedding_optimizer.iterations.numpy() == model.optimizer.iterations.numpy() > 0
  tables = model.items.embedding.embedding_tables
  assert [t.shape.as_list() for t in tables.values()] == [[L * K, 4]]
  assert all(not np.allclose(before[name], table.numpy()) for name, table in tables.items())
  slots = {v.name for v in model.embedding_optimizer.variables()}
  assert any("accumulator" in name for name in slots)


def test_unknown_and_missing_items_score_finite_as_no_item(catalog, spm_model):
  model = ranking.build(RankingConfig(representation="spm", table_rows=24, embedding_dim=4, hidden_units=(8,)),
                        catalog, spm_model)
  base = {"item_id": tf.constant([5, 5]), "history": tf.ragged.constant([[], []], dtype=tf.int64)}
  unknown = model({**base, "current_item": tf.constant([999, 0])}).numpy()
  assert np.isfinite(unknown).all() and unknown[0] == unknown[1]
  vectors = model.items(tf.constant([999, 0]), tf.constant([0, 0]), tf.ragged.constant([[999], []], dtype=tf.int64))
  assert all(np.all(v.numpy() == 0) for v in (vectors[0], vectors[2]))


def test_warm_start_restores_weights_and_optimizer_state(tmp_path, catalog, spm_model):
  config = RankingConfig(representation="spm", table_rows=24, embedding_dim=4, hidden_units=(8,))
  trained = ranking.build(config, catalog, spm_model)
  trained.fit(_dataset(batches=3), verbose=0)
  ranking.save_checkpoint(trained, str(tmp_path))
  batch = _batch(np.random.default_rng(2))
  fresh = ranking.build(config, catalog, spm_model)
  assert not np.allclose(fresh(batch).numpy(), trained(batch).numpy())
  ranking.warm_start(fresh, str(tmp_path), batch)
  np.testing.assert_allclose(fresh(batch).numpy(), trained(batch).numpy(), rtol=1e-6)
  assert fresh.optimizer.iterations.numpy() == trained.optimizer.iterations.numpy() > 0
  assert fresh.embedding_optimizer.iterations.numpy() == trained.embedding_optimizer.iterations.numpy()
  # One more step on the same batch gives the same weights only if the optimizers' slots (Adam
  # moments, Adagrad accumulators) were restored too, not only their iteration counters.
  for model in (trained, fresh):
    model.train_step(batch)
  state = lambda model: (model.trainable_variables + model.optimizer.variables
                         + model.embedding_optimizer.variables)
  assert len(state(fresh)) == len(state(trained))
  for after_warm_start, after_original in zip(state(fresh), state(trained)):
    np.testing.assert_allclose(after_warm_start.numpy(), after_original.numpy(), rtol=1e-6,
                               err_msg=after_original.name)
  other = ranking.build(RankingConfig(representation="unigram", embedding_dim=4, hidden_units=(8,)), catalog)
  with pytest.raises(ValueError, match=r"differ in \{'representation': \('spm', 'unigram'\)"):
    ranking.warm_start(other, str(tmp_path), batch)


def test_config_is_validated():
  with pytest.raises(ValueError, match="unknown item representation 'trigram'"):
    RankingConfig(representation="trigram")
  with pytest.raises(ValueError, match=r"unknown ranking settings \['depth'\]"):
    RankingConfig.from_dict({"depth": 3})
  assert RankingConfig(representation="dense", width_multiplier=1.5, use_history=False).name == "dense x1.5-history"
  assert RankingConfig(representation="spm", table_rows=1024).name == "spm@1024+history"
