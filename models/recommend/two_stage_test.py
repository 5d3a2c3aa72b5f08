"""The two-stage SavedModel: what retrieval hands the ranker, and what recommend answers."""

import numpy as np
import pytest
import tensorflow as tf

import conftest
from models.ranking import signatures as ranking_signatures
from models.recommend import two_stage
from models.retrieval import serving as retrieval

N = conftest.TWO_STAGE_ITEMS
NEW_ITEM = N + 1  # in the retrieval catalog and the content table, unknown to the ranker


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, two_stage_sources):
  ranking_dir, retrieval_dir, catalog, vectors = two_stage_sources
  export_dir = str(tmp_path_factory.mktemp("two_stage") / "model")
  two_stage.export(two_stage.TwoStage(retrieval_dir, ranking_dir, catalog, catalog.item_ids, vectors,
                                      num_candidates=6), export_dir)
  return ranking_dir, export_dir, vectors


def _request(history, k, user=3):
  return dict(history=tf.constant(history, tf.int64), history_liked=tf.constant([1] * len(history), tf.int64),
              history_age_days=tf.constant([0] * len(history), tf.int64), user_id=tf.constant(user, tf.int64),
              k=tf.constant(k, tf.int64))


def test_recommend_ranks_what_retrieval_returns_with_the_rankers_scores(model_dirs):
  ranking_dir, export_dir, vectors = model_dirs
  served = tf.saved_model.load(export_dir).signatures
  request = _request([2, 5], k=4)
  answer = served[two_stage.RECOMMEND](**request)
  retrieved = served[retrieval.RETRIEVE](history=request["history"], user_id=request["user_id"],
                                         k=tf.constant(6, tf.int64))
  candidates = retrieved[retrieval.ITEMS].numpy()
  assert len(candidates) == 6 and not set(candidates) & {2, 5}
  rank = tf.saved_model.load(ranking_dir).signatures[ranking_signatures.RANK_WITH_EMBEDDINGS]
  expected = rank(history=request["history"], history_liked=request["history_liked"],
                  history_age_days=request["history_age_days"],
                  current_item=tf.constant(5, tf.int64), candidates=tf.constant(candidates),
                  user_id=request["user_id"], candidate_embeddings=tf.constant(vectors[candidates - 1]))
  order = expected[ranking_signatures.RANKING].numpy()[:4]
  assert answer[two_stage.ITEMS].numpy().tolist() == candidates[order].tolist()
  np.testing.assert_allclose(answer[two_stage.RANKING_SCORES].numpy(),
                             expected[ranking_signatures.SCORES].numpy()[order], rtol=1e-6)
  np.testing.assert_allclose(answer[two_stage.RETRIEVAL_SCORES].numpy(),
                             retrieved[retrieval.SCORES].numpy()[order], rtol=1e-6)
  assert answer[two_stage.RETRIEVAL_RANK].numpy().tolist() == order.tolist()


def test_a_new_item_is_recommended_through_its_content(model_dirs):
  _, export_dir, _ = model_dirs
  recommend = tf.saved_model.load(export_dir).signatures[two_stage.RECOMMEND]
  answer = recommend(**_request([1], k=50))  # k beyond the catalog: every unseen item, once
  items = answer[two_stage.ITEMS].numpy().tolist()
  assert sorted(items) == list(range(2, NEW_ITEM + 1))
  scored_by = dict(zip(items, answer[two_stage.SCORED_BY].numpy().tolist()))
  assert scored_by[NEW_ITEM] == b"content" and scored_by[2] == b"catalog"


def test_bad_requests_get_an_answer_or_a_clear_error(model_dirs):
  _, export_dir, _ = model_dirs
  recommend = tf.saved_model.load(export_dir).signatures[two_stage.RECOMMEND]
  assert len(recommend(**_request([], k=3, user=0))[two_stage.ITEMS]) == 3   # no history, no user
  assert len(recommend(**_request([999, 12345], k=3))[two_stage.ITEMS]) == 3  # ids nobody knows
  everything = list(range(1, NEW_ITEM + 1))
  assert recommend(**_request(everything, k=3))[two_stage.ITEMS].numpy().tolist() == []
  for k in (0, -2):
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be > 0"):
      recommend(**_request([1], k=k))
  with pytest.raises(tf.errors.InvalidArgumentError, match="one label per history item"):
    recommend(**{**_request([1, 2], k=2), "history_liked": tf.constant([1], tf.int64)})
  with pytest.raises(tf.errors.InvalidArgumentError, match="one age per history item"):
    recommend(**{**_request([1, 2], k=2), "history_age_days": tf.constant([0, 0, 0], tf.int64)})
