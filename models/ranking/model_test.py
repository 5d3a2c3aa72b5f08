import json

import numpy as np
import pytest
import tensorflow as tf

from formats import interaction_features as fields
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
  per_item = lambda high: history.with_flat_values(tf.constant(rng.integers(0, high, len(history.flat_values))))
  return {"item_id": tf.constant(items), "current_item": tf.constant(rng.integers(0, N + 1, size)),
          "history": history, "history_liked": per_item(2), "history_age_days": per_item(100),
          "liked": tf.constant(LIKED[items - 1].astype(np.int64))}


def _dataset(seed=0, batches=20):
  rng = np.random.default_rng(seed)
  data = [_batch(rng) for _ in range(batches)]
  return tf.data.Dataset.from_generator(lambda: iter(data), output_signature={
      "item_id": tf.TensorSpec([None], tf.int64), "current_item": tf.TensorSpec([None], tf.int64),
      **{name: tf.RaggedTensorSpec([None, None], tf.int64)
         for name in ("history", "history_liked", "history_age_days")},
      "liked": tf.TensorSpec([None], tf.int64)})


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
  sid_rates = fields.SID_CLUSTER_LEVELS + 1 if config.uses_sid_clusters else 0  # and the item's rate towards them
  vectors = (3 if use_history else 2) + config.history_attention  # candidate, current (, pooled), attended
  assert tower_input == item_dim * vectors + fields.COUNTER_FEATURES + sid_rates
  assert model.tower.layers[0].kernel.shape[1] == int(16 * arm.get("width_multiplier", 1))


def _user_batch(rng, size=64):
  """Labels follow the user (even ids like everything); the user's counters say so too."""
  users = rng.integers(1, 20, size)
  prior = rng.integers(1, 30, size)
  likes = users % 2 == 0
  counters = {fields.USER_COUNTERS.count: prior, fields.USER_COUNTERS.liked: np.where(likes, prior, 0),
              fields.USER_COUNTERS.rating_sum: (prior * np.where(likes, 4.5, 2.0)).astype(np.float32)}
  for name in fields.ITEM_COUNTERS:  # items without counters
    counters[name] = np.zeros(size, np.float32 if name == fields.ITEM_COUNTERS.rating_sum else np.int64)
  batch = _batch(rng, size)
  history_liked = batch[fields.HISTORY].with_flat_values(
      tf.constant(rng.integers(0, 2, batch[fields.HISTORY].flat_values.shape[0]), tf.int64))
  return {**batch, fields.HISTORY_LIKED: history_liked, fields.USER_ID: tf.constant(users),
          fields.LABEL: tf.constant(likes.astype(np.int64)),
          **{name: tf.constant(value) for name, value in counters.items()}}


USER_ARMS = [dict(use_counters=True), dict(user_table_rows=64),
             dict(split_history=True, use_counters=True, user_table_rows=64, cross_layers=2)]


@pytest.mark.parametrize("arm", USER_ARMS, ids=lambda a: RankingConfig(**a).name.split("+history")[1])
def test_user_id_and_counters_learn_and_score_unknown_users_finite(arm, catalog):
  config = RankingConfig(representation="unigram", embedding_dim=8, hidden_units=(16,), learning_rate=0.01, **arm)
  model = ranking.build(config, catalog)
  rng = np.random.default_rng(0)
  train = [_user_batch(rng) for _ in range(20)]
  model.fit(tf.data.Dataset.from_tensor_slices({k: tf.concat([b[k] for b in train], 0) for k in train[0]})
            .batch(64).repeat(5), verbose=0)
  held_out = model.evaluate(tf.data.Dataset.from_tensors(_user_batch(np.random.default_rng(9))), verbose=0,
                            return_dict=True)
  assert held_out["auc"] > 0.9, held_out
  # Unknown users (never seen, or no id) and users without interactions before: finite scores, and
  # the same fallback user vector for all of them.
  batch = _user_batch(np.random.default_rng(3), size=4)
  batch.update({fields.USER_ID: tf.constant([12345, fields.NO_USER, 2, 4]),
                fields.USER_COUNTERS.count: tf.constant([0, 0, 0, 0])})
  scores = model(batch).numpy()
  assert np.isfinite(scores).all()
  if model.users is not None:
    vectors = model.users(batch[fields.USER_ID], batch[fields.USER_COUNTERS.count]).numpy()
    assert np.all(vectors == 0)


@pytest.mark.parametrize("representation", ["unigram", "dense"])
def test_a_split_history_tells_a_disliked_item_from_a_liked_one(representation, catalog):
  def scores(split_history, liked):
    # Without counters and attention: the history's like-rate and the attention's labels would tell the labels
    # apart without the split.
    model = ranking.build(RankingConfig(representation=representation, embedding_dim=4, hidden_units=(8,),
                                        split_history=split_history, use_counters=False, history_attention=False),
                          catalog)
    return model({fields.ITEM_ID: tf.constant([5]), fields.CURRENT_ITEM: tf.constant([2]),
                  fields.HISTORY: tf.ragged.constant([[3, 4]], tf.int64),
                  fields.HISTORY_LIKED: tf.ragged.constant([liked], tf.int64)}).numpy()
  assert scores(False, [1, 1]) == scores(False, [0, 0])
  assert scores(True, [1, 1]) != scores(True, [0, 1])
  with pytest.raises(tf.errors.InvalidArgumentError, match="one label per history item"):
    scores(True, [1])


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


def test_a_built_model_traces_its_training_step_once(catalog, spm_model):
  # Every variable, the optimizers' slots included, exists before the first step: a step that created one
  # would be traced twice.
  config = RankingConfig(representation="spm", table_rows=24, embedding_dim=4, hidden_units=(8,),
                         user_table_rows=16, use_counters=True)
  model = ranking.build(config, catalog, spm_model)
  variables = len(model.variables) + len(model.optimizer.variables) + len(model.embedding_optimizer.variables)
  model.fit(tf.data.Dataset.from_tensors(_user_batch(np.random.default_rng(3))).repeat(2), verbose=0)
  assert model.train_function.experimental_get_tracing_count() == 1
  assert len(model.variables) + len(model.optimizer.variables) + len(model.embedding_optimizer.variables) == variables


def test_unknown_and_missing_items_score_finite_as_no_item(catalog, spm_model):
  model = ranking.build(RankingConfig(representation="spm", table_rows=24, embedding_dim=4, hidden_units=(8,),
                                      history_attention=False), catalog, spm_model)
  base = {"item_id": tf.constant([5, 5]), "history": tf.ragged.constant([[], []], dtype=tf.int64)}
  unknown = model({**base, "current_item": tf.constant([999, 0])}).numpy()
  assert np.isfinite(unknown).all() and unknown[0] == unknown[1]
  vectors = model.items(tf.constant([999, 0]), tf.constant([0, 0]), tf.ragged.constant([[999], []], dtype=tf.int64))
  assert np.all(vectors.candidate.numpy() == 0) and np.all(vectors.history.flat_values.numpy() == 0)
  assert vectors.known.to_list() == [[False], []]


@pytest.mark.parametrize("users", [{}, dict(split_history=True, use_counters=True, user_table_rows=16, cross_layers=1)],
                         ids=["items", "users"])
def test_warm_start_restores_weights_and_optimizer_state(tmp_path, catalog, spm_model, users):
  # No dropout: its random masks are not part of the state a warm start restores.
  config = RankingConfig(representation="spm", table_rows=24, embedding_dim=4, hidden_units=(8,), item_dropout=0,
                         **users)
  trained = ranking.build(config, catalog, spm_model)
  rng = np.random.default_rng(4)
  trained.fit(tf.data.Dataset.from_tensors(_user_batch(rng)).repeat(3), verbose=0)
  ranking.save_checkpoint(trained, str(tmp_path))
  batch = _user_batch(np.random.default_rng(2))
  fresh = ranking.build(config, catalog, spm_model)
  assert not np.allclose(fresh(batch).numpy(), trained(batch).numpy())
  ranking.warm_start(fresh, str(tmp_path))
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
    ranking.warm_start(other, str(tmp_path))
  with open(tmp_path / ranking.CONFIG_FILE) as f:
    saved = json.load(f)
  with open(tmp_path / ranking.CONFIG_FILE, "w") as f:  # a checkpoint from before the counter tower
    json.dump({k: v for k, v in saved.items() if k != "counter_tower"}, f)
  with pytest.raises(ValueError, match=r"written before the settings \['counter_tower'\] existed; run a SID refresh"):
    ranking.warm_start(fresh, str(tmp_path))


def test_item_dropout_is_random_in_training_only(catalog):
  model = ranking.build(RankingConfig(representation="unigram", embedding_dim=8, hidden_units=(8,), item_dropout=0.5),
                        catalog)
  batch = _batch(np.random.default_rng(5))
  np.testing.assert_array_equal(model(batch).numpy(), model(batch).numpy())
  assert not np.array_equal(model(batch, training=True).numpy(), model(batch, training=True).numpy())


def test_config_is_validated():
  with pytest.raises(ValueError, match=r"item_dropout must be in \[0, 1\), got 1"):
    RankingConfig(item_dropout=1)
  with pytest.raises(ValueError, match="step_lr_scale must be >= 0"):
    RankingConfig(step_lr_scale=-1)
  with pytest.raises(ValueError, match="remap_pieces must be 'fit' or 'copy', got 'keep'"):
    RankingConfig(remap_pieces="keep")
  with pytest.raises(ValueError, match="unknown item representation 'trigram'"):
    RankingConfig(representation="trigram")
  with pytest.raises(ValueError, match=r"unknown ranking settings \['depth'\]"):
    RankingConfig.from_dict({"depth": 3})
  # No SIDs: no SID-cluster rates.
  assert RankingConfig(representation="dense", width_multiplier=1.5, use_history=False).name == (
      "dense x1.5-history+counters+cross2+steplr0.1+countertower+attention+ages+window10")
  assert RankingConfig(representation="random_hash", table_rows=1024, use_counters=False, cross_layers=0,
                       step_lr_scale=1, history_attention=False, history_window=0).name == "random_hash@1024+history"
  assert RankingConfig(split_history=True, use_counters=True, user_table_rows=64, cross_layers=1).name == (
      "spm@4096+history+split+counters+user@64+cross1+sidrates+steplr0.1+countertower+attention+ages+window10")


def test_dataset_reads_every_file_and_reshuffles_each_cached_pass(tmp_path):
  for part in range(3):
    with tf.io.TFRecordWriter(str(tmp_path / f"part-{part}.gz"), options="GZIP") as writer:
      for item in range(part * 100 + 1, part * 100 + 101):
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            name: tf.train.Feature(int64_list=tf.train.Int64List(value=[item if name == fields.ITEM_ID else 0]))
            for name in (fields.ITEM_ID, fields.LABEL)})).SerializeToString())
  data = ranking.dataset(str(tmp_path / "part-*"), 64, shuffle_seed=0, cache=True)
  passes = [np.concatenate([batch[fields.ITEM_ID].numpy() for batch in data]) for _ in range(2)]
  expected = [i for part in range(3) for i in range(part * 100 + 1, part * 100 + 101)]
  assert sorted(passes[0]) == sorted(passes[1]) == expected
  assert not np.array_equal(passes[0], passes[1])
  in_order = [np.concatenate([batch[fields.ITEM_ID].numpy() for batch in ranking.dataset(str(tmp_path / "*"), 64)])
              for _ in range(2)]
  np.testing.assert_array_equal(in_order[0], in_order[1])
  # Rows computed from a first pass in that order reach their own examples, through the cache and shuffles.
  columns = ranking.columns(str(tmp_path / "*"), {fields.ITEM_ID: tf.io.FixedLenFeature([], tf.int64)})
  np.testing.assert_array_equal(columns[fields.ITEM_ID], in_order[0])
  joined = ranking.dataset(str(tmp_path / "*"), 64, shuffle_seed=1, cache=True,
                           extra={"twice": columns[fields.ITEM_ID] * 2})
  for _ in range(2):
    for batch in joined:
      np.testing.assert_array_equal(batch["twice"].numpy(), batch[fields.ITEM_ID].numpy() * 2)
  # `keep` leaves out the examples it marks, and the rows joined to the others stay theirs.
  keep = columns[fields.ITEM_ID] % 3 == 0
  kept = ranking.dataset(str(tmp_path / "*"), 64, shuffle_seed=2, cache=True, keep=keep,
                         extra={"twice": columns[fields.ITEM_ID][keep] * 2})
  for _ in range(2):
    batches = list(kept)
    assert sorted(np.concatenate([b[fields.ITEM_ID].numpy() for b in batches])) == [i for i in expected if i % 3 == 0]
    for batch in batches:
      np.testing.assert_array_equal(batch["twice"].numpy(), batch[fields.ITEM_ID].numpy() * 2)


def test_most_recent_marks_the_latest_timestamps_later_read_first():
  assert ranking.most_recent(np.array([5, 1, 7, 5, 3]), 3).tolist() == [True, False, True, True, False]
  assert ranking.most_recent(np.array([5, 1, 7, 5, 3]), 2).tolist() == [False, False, True, True, False]
  assert ranking.most_recent(np.array([5, 1]), 2) is None and ranking.most_recent(np.array([5, 1]), 0) is None


@pytest.mark.parametrize("settings", [dict(counter_tower=True), dict(sid_like_rates=True),
                                      dict(counter_tower=True, sid_like_rates=True)], ids=lambda s: "+".join(s))
def test_counter_options_learn_and_warm_start(tmp_path, catalog, settings):
  config = RankingConfig(representation="unigram", embedding_dim=4, hidden_units=(8,), item_dropout=0,
                         learning_rate=0.01, **settings)
  rng = np.random.default_rng(3)
  train = [_user_batch(rng) for _ in range(20)]
  data = {k: tf.concat([b[k] for b in train], 0) for k in train[0]}
  model = ranking.build(config, catalog)
  assert (model.sid_clusters is not None) == config.sid_like_rates
  model.fit(tf.data.Dataset.from_tensor_slices(data).batch(64).repeat(5), verbose=0)
  model.count({name: data[name].numpy() for name in (fields.ITEM_ID, fields.LABEL)})
  held_out = model.evaluate(tf.data.Dataset.from_tensors(_user_batch(np.random.default_rng(9))), verbose=0,
                            return_dict=True)
  assert held_out["auc"] > 0.9
  ranking.save_checkpoint(model, str(tmp_path))
  batch = _user_batch(np.random.default_rng(2))
  fresh = ranking.build(config, catalog)
  ranking.warm_start(fresh, str(tmp_path))
  np.testing.assert_allclose(fresh(batch).numpy(), model(batch).numpy(), rtol=1e-5)
  if config.sid_like_rates:  # the SID-cluster counts travel with the checkpoint
    np.testing.assert_array_equal(fresh.sid_clusters.counts.numpy(), model.sid_clusters.counts.numpy())
    assert fresh.sid_clusters.counts.numpy()[:, 0].sum() == 2 * len(data[fields.LABEL])  # two levels


def test_sid_cluster_rates_are_for_sid_representations_only(catalog):
  for representation, expected in (("unigram", True), ("random_hash", False), ("dense", False)):
    model = ranking.build(RankingConfig(representation=representation, table_rows=64, sid_like_rates=True), catalog)
    assert (model.sid_clusters is not None) == expected
    assert ("+sidrates" in model.config.name) == expected


def test_warmup_features_of_the_kept_examples_are_theirs_among_all(catalog):
  model = ranking.build(RankingConfig(representation="unigram", table_rows=64, sid_like_rates=True), catalog)
  rng = np.random.default_rng(0)
  span = {fields.ITEM_ID: rng.choice(catalog.item_ids, 40), fields.LABEL: rng.integers(0, 2, 40),
          fields.TIMESTAMP: rng.integers(0, 10, 40)}
  keep = ranking.most_recent(span[fields.TIMESTAMP], 15)
  every = model.warmup_features(span)[fields.SID_CLUSTER_COUNTS]
  kept = model.warmup_features(span, keep)[fields.SID_CLUSTER_COUNTS]
  assert kept.shape == (15, every.shape[1]) and every[keep].any()
  np.testing.assert_array_equal(kept, every[keep])


def test_step_learning_rates_replace_the_warm_ups(catalog):
  model = ranking.build(RankingConfig(representation="unigram", embedding_dim=4, hidden_units=(8,),
                                      learning_rate=0.01, embedding_learning_rate=0.2, step_lr_scale=0.1), catalog)
  for _ in range(2):  # idempotent: a warm start sets them again
    ranking.use_step_learning_rates(model)
  assert model.optimizer.learning_rate.numpy() == pytest.approx(0.001)
  assert model.embedding_optimizer.learning_rate.numpy() == pytest.approx(0.02)


def _resemblance_batch(rng, size=64):
  """The label is the user's label of the history item that shares the candidate's first SID code: what
  attention over the history can read and a pooled history cannot."""
  by_code = {code: np.flatnonzero(CODES[:, 0] == code) + 1 for code in np.unique(CODES[:, 0])}
  items, histories, labels, history_liked = [], [], [], []
  for _ in range(size):
    codes = rng.choice(list(by_code), 3, replace=False)
    history = [int(rng.choice(by_code[code])) for code in codes]
    liked = rng.integers(0, 2, 3).tolist()
    pick = rng.integers(0, 3)
    items.append(int(rng.choice(by_code[codes[pick]])))
    histories.append(history)
    history_liked.append(liked)
    labels.append(liked[pick])
  return {fields.ITEM_ID: tf.constant(items, tf.int64), fields.CURRENT_ITEM: tf.zeros([size], tf.int64),
          fields.HISTORY: tf.ragged.constant(histories, tf.int64),
          fields.HISTORY_LIKED: tf.ragged.constant(history_liked, tf.int64),
          fields.LABEL: tf.constant(labels, tf.int64)}


@pytest.mark.parametrize("representation", ["unigram", "dense"])
def test_history_attention_learns_which_history_item_resembles_the_candidate_and_warm_starts(
    tmp_path, catalog, representation):
  aucs = {}
  for attention in (False, True):
    config = RankingConfig(representation=representation, table_rows=64, embedding_dim=8, hidden_units=(16,),
                           item_dropout=0, use_counters=False, sid_like_rates=False, learning_rate=0.01,
                           history_attention=attention, history_ages=False)
    model = ranking.build(config, catalog)
    rng = np.random.default_rng(5)
    model.fit(tf.data.Dataset.from_tensor_slices(_resemblance_batch(rng, 2048)).batch(64).repeat(4), verbose=0)
    held_out = tf.data.Dataset.from_tensors(_resemblance_batch(np.random.default_rng(9), 512))
    aucs[attention] = model.evaluate(held_out, verbose=0, return_dict=True)["auc"]
  assert aucs[True] > 0.9 and aucs[False] < 0.7, aucs
  assert "+attention" in config.name
  ranking.save_checkpoint(model, str(tmp_path))
  batch = _resemblance_batch(np.random.default_rng(2))
  fresh = ranking.build(config, catalog)
  ranking.warm_start(fresh, str(tmp_path))
  np.testing.assert_allclose(fresh(batch).numpy(), model(batch).numpy(), rtol=1e-5)


def test_the_model_reads_decayed_counters_and_its_history_windows_only_when_asked(catalog):
  batch = {**_batch(np.random.default_rng(4)), fields.USER_DECAYED.count: tf.fill([64], 3.0),
           fields.USER_DECAYED.liked: tf.fill([64], 3.0)}
  no_decayed = {**batch, fields.USER_DECAYED.liked: tf.zeros([64])}
  last_two = {**batch, **{name: fields.ragged(batch[name])[:, -2:]
                          for name in (fields.HISTORY, fields.HISTORY_LIKED, fields.HISTORY_AGE_DAYS)}}
  history = fields.ragged(batch[fields.HISTORY])
  assert max(history.row_lengths().numpy()) == 3
  # Every item but the last two is another one, with the same label and age.
  older = history.with_flat_values(tf.where(tf.ragged.range(history.row_lengths()).flat_values
                                            < tf.repeat(history.row_lengths() - 2, history.row_lengths()),
                                            N + 1 - history.flat_values, history.flat_values))
  other_old_items = {**batch, fields.HISTORY: older}
  for settings, decayed_read, window_read, old_items_read in (
      (dict(history_window=0), False, False, True),
      (dict(decayed_counters=True, history_window=0), True, False, True),
      (dict(history_window=2), False, True, False),
      (dict(history_window=2, like_rate_window=3), False, False, False)):
    config = RankingConfig(representation="unigram", embedding_dim=8, hidden_units=(16,), item_dropout=0,
                           **settings)
    model = ranking.build(config, catalog)
    scores = model(batch).numpy()
    assert (not np.allclose(model(no_decayed).numpy(), scores)) == decayed_read, settings
    assert np.allclose(model(last_two).numpy(), scores, rtol=1e-6) == window_read, settings
    assert (not np.allclose(model(other_old_items).numpy(), scores, rtol=1e-6)) == old_items_read, settings
