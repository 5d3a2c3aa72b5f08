"""RecommenderPusher's executor on artifacts in a temp dir: nothing pushed until both models are served, then
a complete version over the given catalog."""

import json
import os
import shutil
import urllib.request

import grpc

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tfx.types import standard_artifacts

import conftest
from components.recommender_pusher import executor
from models.recommend import two_stage
from serving import query, rest, server
from serving.model_config import ModelConfig


@pytest.fixture(scope="module")
def sources(tmp_path_factory, two_stage_sources):
  root = tmp_path_factory.mktemp("sources")
  ranking_dir, retrieval_dir, catalog, vectors = two_stage_sources
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
                     history_age_days=tf.constant([0], tf.int64), user_id=tf.constant(2, tf.int64),
                     k=tf.constant(50, tf.int64))
  # The catalog artifact's items (11, one more than the served retrieval model was exported with), history out.
  assert sorted(answer[two_stage.ITEMS].numpy().tolist()) == list(range(2, conftest.TWO_STAGE_ITEMS + 2))
  again = _push(tmp_path, inputs, str(ranking_base), str(retrieval_base))
  assert again.get_int_custom_property("pushed_version") > version

  # Push -> served answer: the model server answers recommend over gRPC and REST as the SavedModel does.
  grpc_server, port, models = server.serve_models([ModelConfig("sid_recommend", str(tmp_path / "recommend"))],
                                                  port=0, poll_seconds=0.1)
  httpd, rest_port = rest.serve_rest(server.Handlers(models, 50), "127.0.0.1", 0)
  try:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
      query.wait_until_available(channel, "sid_recommend", 60)
      served = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
          query.recommend_request("sid_recommend", [1, 4], k=3, user_id=2), timeout=30)
    body = json.dumps({"signature_name": "recommend",
                       "inputs": {"history": [1, 4], "history_liked": [1, 1], "history_age_days": [0, 0],
                                  "user_id": 2, "k": 3}}).encode()
    with urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{rest_port}/v1/models/sid_recommend:predict", data=body), timeout=30) as response:
      over_rest = json.loads(response.read())["outputs"]
  finally:
    httpd.shutdown()
    httpd.server_close()
    grpc_server.stop(0)
    for model in models.values():
      model.stop()
  latest = tf.saved_model.load(again.get_string_custom_property("pushed_destination")).signatures[two_stage.RECOMMEND]
  expected = latest(history=tf.constant([1, 4], tf.int64), history_liked=tf.constant([1, 1], tf.int64),
                    history_age_days=tf.constant([0, 0], tf.int64),
                    user_id=tf.constant(2, tf.int64), k=tf.constant(3, tf.int64))
  for key in (two_stage.ITEMS, two_stage.RANKING_SCORES, two_stage.RETRIEVAL_RANK):
    assert tf.make_ndarray(served.outputs[key]).tolist() == expected[key].numpy().tolist() == over_rest[key]
