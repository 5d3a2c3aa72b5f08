import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tfx.utils import path_utils

import conftest
from formats import interaction_features as fields
from formats.feature_state import CounterSnapshot
from models.ranking import model as ranking
from models.ranking import signatures
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from formats import served_models

L, K, N, D = 2, 4, 10, 8
SMALL = conftest.SMALL_RANKER
VECTORS = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
  root = tmp_path_factory.mktemp("frozen")
  artifact, rqvae = conftest.rqvae_artifact(root / "rqvae", VECTORS, L, K)
  catalog = Catalog(np.arange(1, N + 1), rqvae.encode(VECTORS).numpy(), K, VECTORS)
  return catalog, tf.saved_model.load(path_utils.serving_model_path(artifact.uri))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, frozen):
  """representation -> (model, loaded signatures, export dir), each exported once for the module."""
  cache = {}

  def get(representation):
    if representation not in cache:
      cache[representation] = _export(tmp_path_factory.mktemp(representation), frozen, representation)
    return cache[representation]
  return get


def _export(tmp_path, frozen, representation):
  catalog, sid_encoder = frozen
  export_dir = str(tmp_path / representation)
  model = conftest.export_ranking_model(export_dir, catalog, sid_encoder, representation)
  return model, tf.saved_model.load(export_dir).signatures, export_dir


def _request(candidates, history=(1, 2), current=2, user=0, liked=None, ages=None):
  return dict(history=tf.constant(history, tf.int64),
              history_liked=tf.constant([1] * len(history) if liked is None else liked, tf.int64),
              history_age_days=tf.constant([0] * len(history) if ages is None else ages, tf.int64),
              current_item=tf.constant(current, tf.int64),
              candidates=tf.constant(candidates, tf.int64), user_id=tf.constant(user, tf.int64))


def test_rank_scores_like_the_model_and_orders_best_first(exported):
  model, served, _ = exported("unigram")
  assert set(served) == {"serving_default", "rank", "rank_with_embeddings"}
  out = served["rank"](**_request([5, 3, 9, 1], history=(1, 2), current=2))
  expected = tf.sigmoid(model({"item_id": tf.constant([5, 3, 9, 1]), "current_item": tf.constant([2] * 4),
                               "history": tf.ragged.constant([[1, 2]] * 4, dtype=tf.int64),
                               "history_liked": tf.ragged.constant([[1, 1]] * 4, dtype=tf.int64)})).numpy()
  np.testing.assert_allclose(out["scores"].numpy(), expected, rtol=1e-5)
  assert out["ranking"].numpy().tolist() == np.argsort(-expected, kind="stable").tolist()
  assert out["scored_by"].numpy().tolist() == [b"catalog"] * 4
  # A new user: no history, no current item.
  assert np.isfinite(served["rank"](**_request([1, 2], history=[], current=0))["scores"].numpy()).all()


def test_serving_default_scores_examples_without_history(exported):
  model, served, _ = exported("unigram")
  example = tf.train.Example()
  example.features.feature["item_id"].int64_list.value.append(7)
  scores = served["serving_default"](examples=tf.constant([example.SerializeToString()]))[ranking.PROBABILITY]
  expected = tf.sigmoid(model({"item_id": tf.constant([7]), "current_item": tf.constant([0]),
                               "history": tf.ragged.constant([[]], dtype=tf.int64)}))
  np.testing.assert_allclose(scores.numpy(), expected.numpy(), rtol=1e-5)


@pytest.mark.parametrize("representation", ["unigram", "dense"])
def test_an_unknown_item_is_scored_through_its_content(exported, representation):
  _, served, _ = exported(representation)
  known = served["rank"](**_request([3, 7]))["scores"].numpy()
  # Items 1003 and 1007 are unknown to the catalog but bring the content of items 3 and 7: they get
  # the same SIDs from the frozen RQ-VAE (dense: the same vectors), hence the same scores.
  by_vector = served["rank_with_embeddings"](**_request([1003, 1007]),
                                             candidate_embeddings=tf.constant(VECTORS[[2, 6]]))
  np.testing.assert_allclose(by_vector["scores"].numpy(), known, rtol=1e-5)
  assert by_vector["scored_by"].numpy().tolist() == [b"content"] * 2


def test_without_usable_content_an_unknown_item_gets_the_fallback_never_nan(exported):
  _, served, _ = exported("dense")
  no_item = served["rank"](**_request([0]))["scores"].numpy()
  bad = VECTORS[[0, 0, 0]].copy()
  bad[1, 2], bad[2, 0] = np.nan, np.inf
  out = served["rank_with_embeddings"](**_request([4, 1001, 1002]), candidate_embeddings=tf.constant(bad))
  assert out["scored_by"].numpy().tolist() == [b"catalog", b"fallback", b"fallback"]
  np.testing.assert_allclose(out["scores"].numpy()[1:], [no_item[0]] * 2, rtol=1e-5)
  plain = served["rank"](**_request([4, 1001]))
  assert plain["scored_by"].numpy().tolist() == [b"catalog", b"fallback"]
  np.testing.assert_allclose(plain["scores"].numpy()[1], no_item[0], rtol=1e-5)


def test_random_hashing_has_no_content_signatures(frozen):
  catalog, sid_encoder = frozen
  model = ranking.build(RankingConfig(representation="random_hash", table_rows=64, **SMALL), catalog)
  served = signatures._signatures(signatures._Serving(model, sid_encoder,
                                                      CounterSnapshot.empty()))
  assert set(served) == {"serving_default", "rank"}
  assert np.isfinite(served["rank"](**_request([1, 12345]))["scores"].numpy()).all()


def test_malformed_requests_are_refused_with_a_message(exported):
  _, served, _ = exported("unigram")
  with pytest.raises(tf.errors.InvalidArgumentError, match="no candidates to rank"):
    served["rank"](**_request([]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="one row per candidate"):
    served["rank_with_embeddings"](**_request([1, 2]), candidate_embeddings=tf.constant(VECTORS[:1]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="one label per history item"):
    served["rank"](**_request([1, 2], history=(1, 2), liked=(1,)))
  with pytest.raises(tf.errors.InvalidArgumentError, match="one age per history item"):
    served["rank"](**_request([1, 2], history=(1, 2), ages=(1, 2, 3)))
  with pytest.raises(tf.errors.InvalidArgumentError, match="no examples to score"):
    served["serving_default"](examples=tf.constant([], tf.string))


def test_warmup_requests_cover_every_signature_and_replay(exported):
  _, served, export_dir = exported("dense")
  logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in
          tf.data.TFRecordDataset(os.path.join(export_dir, served_models.WARMUP_FILE))]
  assert sorted(log.predict_log.request.model_spec.signature_name for log in logs) == sorted(served)
  for log in logs:
    request = log.predict_log.request
    inputs = {key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
    outputs = served[request.model_spec.signature_name](**inputs)
    assert all(np.isfinite(v.numpy()).all() for v in outputs.values() if v.dtype.is_floating)


@pytest.mark.parametrize("attention", [dict(history_attention=False), dict(history_attention=True, history_ages=False),
                                       dict(history_attention=True, history_ages=True),
                                       dict(history_attention=True, history_ages=True, decayed_counters=True)],
                         ids=["pooled", "attention", "attention+ages", "attention+ages+decayed"])
def test_rank_looks_up_the_counters_training_reads(tmp_path, frozen, attention):
  """A user's next interaction after the snapshot's span: `rank` (user and item counters from the model's
  snapshot) scores it exactly as serving_default scores its tf.Example, which carries the counters
  training reads. Unknown users and items without counters get zero counters, as a first interaction."""
  catalog, sid_encoder = frozen
  config = RankingConfig(representation="unigram", split_history=True, use_counters=True, user_table_rows=16,
                         cross_layers=1, attention_heads=1, **attention, **SMALL)
  model = ranking.build(config, catalog)
  counters = lambda user, item: dict(zip(fields.USER_COUNTERS + fields.USER_DECAYED + fields.ITEM_COUNTERS
                                         + fields.ITEM_DECAYED, user + item))
  train = [conftest.example(user_id=u, item_id=i, current_item=2, history=[1, 2], history_liked=[1, 0],
                            history_age_days=[4, 0], liked=u % 2,
                            **counters((5, 4 * (u % 2), 20.5, 2.5, 2.0 * (u % 2)), (3, 1, 9.0, 0.5, 0.25))
                            ).SerializeToString()
           for u in (7, 8) for i in (3, 5)]
  model.fit(tf.data.Dataset.from_tensors(tf.io.parse_example(train, fields.TRAINING_SPEC)).repeat(3), verbose=0)
  model.count({fields.ITEM_ID: np.array([3, 5, 3, 5]), fields.LABEL: np.array([0, 0, 1, 1])})
  assert model.sid_clusters.counts.numpy().sum() > 0  # the SID clusters' counts are served too
  users, items = [(3, 2, 11.5, 1.5, 0.75), (6, 1, 14.0, 4.25, 0.5)], [(4, 1, 12.5, 2.5, 1.0), (2, 2, 9.0, 0.5, 0.5)]
  snapshot = CounterSnapshot(user_ids=np.array([7, 8]), users=np.array(users), item_ids=np.array([5, 9]),
                             items=np.array(items))
  with pytest.raises(ValueError, match="export it with the counters' snapshot"):
    signatures.export(model, str(tmp_path / "refused"), catalog.item_ids[:4])
  signatures.export(model, str(tmp_path / "model"), catalog.item_ids[:4], sid_encoder, counters=snapshot)
  served = tf.saved_model.load(str(tmp_path / "model")).signatures
  none = (0, 0, 0.0, 0.0, 0.0)
  for user, user_counters in ((7, users[0]), (8, users[1]), (99, none), (fields.NO_USER, none)):
    ranked = served["rank"](**_request([5, 9, 3], history=(1, 2), liked=(1, 0), ages=(4, 0), current=2,
                                       user=user))["scores"].numpy()
    examples = [conftest.example(user_id=user, item_id=item, current_item=2, history=[1, 2], history_liked=[1, 0],
                                 history_age_days=[4, 0],
                                 **counters(user_counters, item_counters)).SerializeToString()
                for item, item_counters in ((5, items[0]), (9, items[1]), (3, none))]
    by_example = served["serving_default"](examples=tf.constant(examples))[ranking.PROBABILITY].numpy()
    np.testing.assert_array_equal(ranked, by_example)
    assert np.isfinite(ranked).all()
