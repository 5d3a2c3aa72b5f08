"""TF Serving's REST API against the gRPC server's answers, with a plain HTTP client."""

import base64
import json
import re
import urllib.error
import urllib.request

import pytest
import tensorflow as tf

import conftest
from serving import query, rest, server
from serving.server_test import NAME, _predict, _rank, export_dir, running  # noqa: F401  (fixtures)


@pytest.fixture
def rest_url(running):  # noqa: F811  (pytest passes the imported fixture)
  _, _, models, _ = running
  httpd, port = rest.serve_rest(server.Handlers({NAME: models}, 50), "127.0.0.1", 0, metrics_path="/metrics")
  yield f"http://127.0.0.1:{port}/v1/models"
  httpd.shutdown()
  httpd.server_close()


def _http(url, body=None):
  """(HTTP status, decoded JSON) of a GET, or of a POST of `body` (bytes or a JSON-able value)."""
  data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
  try:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=20) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as error:
    return error.code, json.loads(error.read())


def test_rest_predict_equals_grpc_predict(running, rest_url):  # noqa: F811  (pytest passes the fixtures)
  _, channel, _, _ = running
  grpc_scores = tf.make_ndarray(_predict(channel, _rank()).outputs["scores"]).tolist()
  status, answer = _http(f"{rest_url}/{NAME}:predict", {
      "signature_name": "rank", "inputs": {"history": [2, 3], "history_liked": [1, 1], "history_age_days": [0, 0],
                                           "current_item": 3, "candidates": [1, 5, 9], "user_id": 0}})
  assert status == 200, answer
  assert answer["outputs"]["scores"] == grpc_scores
  assert answer["outputs"]["ranking"] == tf.make_ndarray(_predict(channel, _rank()).outputs["ranking"]).tolist()

  serialized = [conftest.example(item_id=i).SerializeToString() for i in (4, 7)]
  examples = query.rank_request(NAME, [], 0, [1])
  examples.model_spec.signature_name = "serving_default"
  examples.inputs.clear()
  examples.inputs["examples"].CopyFrom(tf.make_tensor_proto(serialized))
  grpc_probability = tf.make_ndarray(_predict(channel, examples).outputs["probability"]).tolist()
  rows = [{"b64": base64.b64encode(s).decode()} for s in serialized]
  assert _http(f"{rest_url}/{NAME}/versions/1:predict", {"instances": rows}) == (
      200, {"predictions": grpc_probability})
  assert _http(f"{rest_url}/{NAME}:predict", {"instances": [{"examples": row} for row in rows]}) == (
      200, {"predictions": grpc_probability})


def test_rest_status_and_metadata(rest_url):
  assert _http(f"{rest_url}/{NAME}") == (200, {"model_version_status": [
      {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
  status, metadata = _http(f"{rest_url}/{NAME}/versions/1/metadata")
  assert status == 200 and metadata["model_spec"] == {"name": NAME, "version": "1", "signature_name": ""}
  rank = metadata["metadata"]["signature_def"]["signature_def"]["rank"]
  assert set(rank["inputs"]) == {"history", "history_liked", "history_age_days", "current_item", "candidates",
                                 "user_id"}


def test_rest_errors_are_tf_servings_with_a_message(rest_url):
  good = {"signature_name": "rank", "inputs": {"history": [2], "history_liked": [1], "history_age_days": [0],
                                               "current_item": 2, "candidates": [1], "user_id": 0}}
  cases = [
      (f"{rest_url}/other:predict", good, 404, r"Servable not found for request: Latest\(other\)"),
      (f"{rest_url}/{NAME}/versions/7", None, 404, f"Could not find version 7 of model {NAME}"),
      (f"{rest_url}/{NAME}:predict", b"{not json", 400, "the body is not JSON"),
      (f"{rest_url}/{NAME}:predict", {"inputs": {}, "instances": []}, 400, 'one of "instances"'),
      (f"{rest_url}/{NAME}:predict", {**good, "inputs": {**good["inputs"], "candidates": ["a"]}}, 400,
       "input 'candidates' is not a valid int64 value"),
      (f"{rest_url}/{NAME}:predict", {**good, "inputs": {**good["inputs"], "extra": 1}}, 400, r"Sent extra: \{extra\}"),
      (f"{rest_url}/{NAME}:predict", {**good, "signature_name": "score"}, 400, 'signature key "score" not found'),
      (f"{rest_url.rsplit('/', 1)[0]}/nothing", None, 404, "Malformed request"),
  ]
  for url, body, code, message in cases:
    status, answer = _http(url, body)
    assert status == code, (url, answer)
    assert set(answer) == {"error"}
    assert re.search(message, answer["error"]), answer


def test_rest_serves_the_request_metrics(rest_url):
  good = {"signature_name": "rank", "inputs": {"history": [2], "history_liked": [1], "history_age_days": [0],
                                               "current_item": 2, "candidates": [1], "user_id": 0}}
  assert _http(f"{rest_url}/{NAME}:predict", good)[0] == 200
  assert _http(f"{rest_url}/{NAME}:predict", good)[0] == 200
  assert _http(f"{rest_url}/{NAME}/versions/9:predict", good)[0] == 404
  with urllib.request.urlopen(rest_url.replace("/v1/models", "/metrics"), timeout=20) as response:
    text = response.read().decode()
  ok = f'model_name="{NAME}",model_version="1",signature_name="rank",API="Predict",status="OK"'
  missing = f'model_name="{NAME}",model_version="9",signature_name="rank",API="Predict",status="NOT_FOUND"'
  assert f":tensorflow:serving:request_count{{{ok}}} 2" in text.splitlines()
  assert f":tensorflow:serving:request_count{{{missing}}} 1" in text.splitlines()
