"""RecommenderPusher's executor on artifacts in a temp dir: nothing pushed until both models are served, then
a complete version over the given catalog."""

import os
import shutil

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

import conftest
from components.recommender_pusher import executor
from models.recommend import two_stage


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  root = tmp_path_factory.mktemp("sources")
  ranking_dir, retrieval_dir, catalog, vectors = conftest.two_stage_sources(root)
  sids = conftest.semantic_ids_artifact(root / "sids", catalog.codes, catalog.codebook_size,
                                        suffixes=catalog.suffixes)
  return ranking_dir, retrieval_dir, {"semantic_ids": [sids],
                                      "embeddings": [conftest.embeddings_artifact(root / "embeddings", vectors)]}


def _push(tmp_path, inputs, ranking_base, retrieval_base):
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / "pushed")
  executor.Executor().Do(inputs, {executor.PUSHED_MODEL: [pushed]}, {
      executor.RANKING_BASE: ranking_base, executor.RETRIEVAL_BASE: retrieval_base,
      executor.BASE: str(tmp_path / "recommend"), executor.NUM_CANDIDATES: 5})
  return pushed


def test_pushes_once_both_models_are_served(tmp_path, sources):
  ranking_dir, retrieval_dir, inputs = sources
  ranking_base, retrieval_base = tmp_path / "ranking", tmp_path / "retrieval"
  shutil.copytree(ranking_dir, ranking_base / "7")
  nothing = _push(tmp_path, inputs, str(ranking_base), str(retrieval_base))
  assert nothing.get_int_custom_property("pushed") == 0 and not (tmp_path / "recommend").exists()

  shutil.copytree(retrieval_dir, retrieval_base / "3")
  shutil.copytree(retrieval_dir, retrieval_base / "5")
  pushed = _push(tmp_path, inputs, str(ranking_base), str(retrieval_base))
  assert pushed.get_int_custom_property("pushed") == 1
  assert (pushed.get_int_custom_property("ranking_version"), pushed.get_int_custom_property("retrieval_version")) \
      == (7, 5)
  version = pushed.get_int_custom_property("pushed_version")
  assert os.listdir(tmp_path / "recommend") == [str(version)]  # no staging directory left behind
  recommend = tf.saved_model.load(pushed.get_string_custom_property("pushed_destination")).signatures[
      two_stage.RECOMMEND]
  answer = recommend(history=tf.constant([1], tf.int64), history_liked=tf.constant([1], tf.int64),
                     user_id=tf.constant(2, tf.int64), k=tf.constant(50, tf.int64))
  # The catalog artifact's items (11, one more than the served retrieval model was exported with), history out.
  assert sorted(answer[two_stage.ITEMS].numpy().tolist()) == list(range(2, conftest.TWO_STAGE_ITEMS + 2))
  again = _push(tmp_path, inputs, str(ranking_base), str(retrieval_base))
  assert again.get_int_custom_property("pushed_version") > version
