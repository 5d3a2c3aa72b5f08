"""The server's contract with TF Serving clients: each RPC, each error status, and version swaps."""

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc)

import conftest
from formats.feature_state import CounterSnapshot
from models.ranking import model as ranking
from models.ranking import signatures
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from serving import demo, model_config, predict, query, server, versions
from serving.batching import BatchingParameters

NAME, N = "sid_ranking", 12
_VECTORS = np.random.default_rng(0).normal(size=(N, 6)).astype(np.float32)  # the catalog's content vectors
State = get_model_status_pb2.ModelVersionStatus.State


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
  """A small dense ranking model's serving SavedModel (rank, rank_with_embeddings, serving_default)."""
  catalog = Catalog(np.arange(1, N + 1), np.zeros((N, 2), np.int64), 4, _VECTORS)
  model = ranking.build(RankingConfig(representation="dense", embedding_dim=4, hidden_units=(8,)), catalog)
  model({"item_id": tf.constant([1]), "current_item": tf.constant([0]), "history": tf.ragged.constant([[2]])})
  path = str(tmp_path_factory.mktemp("export") / "model")
  signatures.export(model, path, sample_items=[1, 2, 3], counters=CounterSnapshot.empty())
  return path


def _publish(export_dir, base, version):
  """Copies a version in the way a pusher should: complete, then renamed into place."""
  staging = os.path.join(base, f".staging-{version}")
  shutil.copytree(export_dir, staging)
  os.rename(staging, os.path.join(base, str(version)))


@pytest.fixture
def running(tmp_path, export_dir):
  base = str(tmp_path / NAME)
  os.makedirs(base)
  _publish(export_dir, base, 1)
  grpc_server, port, models = server.serve(NAME, base, port=0, policy="latest:2", poll_seconds=0.1,
                                           max_batch_size=50, workers=8, max_num_load_retries=2,
                                           load_retry_interval_seconds=0.3)
  channel = grpc.insecure_channel(f"127.0.0.1:{port}")
  yield base, channel, models, port
  channel.close()
  grpc_server.stop(0)
  models.stop()


def _predict(channel, request):
  return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=20)


def _rank(candidates=(1, 5, 9), history=(2, 3), version=None):
  return query.rank_request(NAME, history, history[-1] if history else 0, candidates, version=version)


def _status(channel, name=NAME, version=None):
  request = get_model_status_pb2.GetModelStatusRequest()
  query.set_model_spec(request.model_spec, name, version)
  return model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)


def test_predict_metadata_and_status(running, export_dir):
  _, channel, _, _ = running
  response = _predict(channel, _rank())
  assert (response.model_spec.name, response.model_spec.version.value) == (NAME, 1)
  assert response.model_spec.signature_name == "rank"
  served = tf.saved_model.load(export_dir).signatures["rank"](
      history=tf.constant([2, 3], tf.int64), history_liked=tf.constant([1, 1], tf.int64),
      history_age_days=tf.constant([0, 0], tf.int64),
      current_item=tf.constant(3, tf.int64),
      candidates=tf.constant([1, 5, 9], tf.int64), user_id=tf.constant(0, tf.int64))
  np.testing.assert_allclose(tf.make_ndarray(response.outputs["scores"]), served["scores"].numpy(), rtol=1e-6)
  assert tf.make_ndarray(response.outputs["ranking"]).tolist() == served["ranking"].numpy().tolist()

  examples = query.rank_request(NAME, [], 0, [1])
  examples.model_spec.signature_name = ""  # serving_default
  examples.inputs.clear()
  examples.inputs["examples"].CopyFrom(tf.make_tensor_proto([conftest.example(item_id=4).SerializeToString()]))
  examples.output_filter.append("probability")
  probability = tf.make_ndarray(_predict(channel, examples).outputs["probability"])
  assert probability.shape == (1,) and 0 < probability[0] < 1

  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
  request.model_spec.name = NAME
  metadata = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=10)
  signature_defs = get_model_metadata_pb2.SignatureDefMap()
  metadata.metadata["signature_def"].Unpack(signature_defs)
  rank = signature_defs.signature_def["rank"]
  assert set(rank.inputs) == {"history", "history_liked", "history_age_days", "current_item", "candidates", "user_id"}
  assert set(rank.outputs) == {"scores", "ranking", "scored_by"}
  assert {"serving_default", "rank_with_embeddings"} <= set(signature_defs.signature_def)

  [status] = _status(channel).model_version_status
  assert (status.version, status.state) == (1, State.AVAILABLE)


def _error(call):
  with pytest.raises(grpc.RpcError) as error:
    call()
  return error.value.code(), error.value.details()


def _with(request, **changes):
  changed = type(request)()
  changed.CopyFrom(request)
  for key, value in changes.items():
    if key == "signature_name":
      changed.model_spec.signature_name = value
    elif key == "name":
      changed.model_spec.name = value
    elif value is None:
      del changed.inputs[key]
    else:
      changed.inputs[key].CopyFrom(value)
  return changed


def test_malformed_requests_get_tf_serving_status_codes_and_the_server_serves_on(running):
  _, channel, _, _ = running
  good = _rank()
  predict = lambda request: lambda: _predict(channel, request)
  cases = [
      (_with(good, name="other"), grpc.StatusCode.NOT_FOUND, r"Servable not found for request: Latest\(other\)"),
      (_rank(version=7), grpc.StatusCode.NOT_FOUND, rf"Specific\({NAME}, 7\)"),
      (_with(good, signature_name="score"), grpc.StatusCode.FAILED_PRECONDITION, 'signature key "score" not found'),
      (_with(good, candidates=None), grpc.StatusCode.INVALID_ARGUMENT, r"Missing but required: \{candidates\}"),
      (_with(good, candidates=tf.make_tensor_proto([1.0, 2.0])), grpc.StatusCode.INVALID_ARGUMENT,
       "'candidates' of signature 'rank' must be int64, got float"),
      (_with(good, current_item=tf.make_tensor_proto([1, 2], tf.int64)), grpc.StatusCode.INVALID_ARGUMENT,
       r"'current_item' of signature 'rank' has shape \[2\], expected \[\]"),
      (_with(good, candidates=tf.make_tensor_proto([], tf.int64)), grpc.StatusCode.INVALID_ARGUMENT,
       "no candidates to rank"),
      (_with(good, candidates=tf.make_tensor_proto(list(range(1, 52)), tf.int64)), grpc.StatusCode.INVALID_ARGUMENT,
       "Task size 51 of input 'candidates' is larger than maximum input batch size 50"),
      (_with(good, signature_name="rank_with_embeddings", candidate_embeddings=tf.make_tensor_proto(
          np.zeros((1, 6), np.float32))), grpc.StatusCode.INVALID_ARGUMENT, "one row per candidate"),
  ]
  for request, code, message in cases:
    got_code, details = _error(predict(request))
    assert got_code == code, (details, code)
    assert re.search(message, details), details
  labelled = _rank()
  labelled.model_spec.version_label = "stable"
  assert _error(predict(labelled))[0] == grpc.StatusCode.INVALID_ARGUMENT

  stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
  metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["tags"])
  query.set_model_spec(metadata.model_spec, NAME)
  assert _error(lambda: stub.GetModelMetadata(metadata))[0] == grpc.StatusCode.INVALID_ARGUMENT
  assert _error(lambda: stub.Classify(classification_pb2.ClassificationRequest()))[0] == \
      grpc.StatusCode.UNIMPLEMENTED
  assert _error(lambda: _status(channel, name="other")) == (
      grpc.StatusCode.NOT_FOUND, "Could not find any versions of model other")
  assert _error(lambda: _status(channel, version=3)) == (
      grpc.StatusCode.NOT_FOUND, f"Could not find version 3 of model {NAME}")
  assert _predict(channel, good).model_spec.version.value == 1  # still serving


def test_a_huge_declared_shape_is_refused_before_it_is_built(running):
  _, channel, _, _ = running
  for name, shape, code in (("candidates", [100_000_000], grpc.StatusCode.INVALID_ARGUMENT),
                            ("history", [50, 2_000_000], grpc.StatusCode.INVALID_ARGUMENT),
                            ("candidates", [-1], grpc.StatusCode.INVALID_ARGUMENT)):
    proto = tf.make_tensor_proto([1], tf.int64)
    del proto.tensor_shape.dim[:]
    for size in shape:
      proto.tensor_shape.dim.add(size=size)
    request = _with(_rank(), **{name: proto})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    got, details = _error(lambda: _predict(channel, request))
    seconds = time.perf_counter() - start
    assert got == code, details
    assert seconds < 0.05, seconds
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 50 * 1024, "memory grew by over 50 MB"


def test_a_request_declaring_more_than_the_byte_limit_is_refused(running, monkeypatch):
  _, channel, _, _ = running
  monkeypatch.setattr(predict, "MAX_REQUEST_BYTES", 16 * 8)  # 16 int64 values in all
  assert _error(lambda: _predict(channel, _rank(candidates=range(1, 20)))) == (
      grpc.StatusCode.RESOURCE_EXHAUSTED,
      "the request's inputs declare more than 0 MiB (at input 'candidates', shape [19])")


def test_non_utf8_bytes_in_a_serialized_example_are_an_invalid_argument(running):
  _, channel, _, _ = running
  wrong_type = tf.train.Example(features=tf.train.Features(feature={
      "item_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\xff\xfe"]))})).SerializeToString()
  for serialized in (b"\xff\xfe\x80 not an Example", wrong_type):
    request = predict_pb2.PredictRequest()
    query.set_model_spec(request.model_spec, NAME)
    request.model_spec.signature_name = signatures.SERVING_DEFAULT
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([serialized], tf.string))
    got, details = _error(lambda: _predict(channel, request))
    assert got == grpc.StatusCode.INVALID_ARGUMENT, details
  assert _predict(channel, _rank()).model_spec.version.value == 1  # still serving


def test_version_swap_under_concurrent_load_fails_no_request(running, export_dir):
  base, channel, models, _ = running
  errors, seen_by_client, stop = [], [[] for _ in range(8)], threading.Event()

  def client(versions_seen):
    while not stop.is_set():
      try:
        versions_seen.append(_predict(channel, _rank()).model_spec.version.value)
      except grpc.RpcError as e:
        errors.append(e)

  clients = [threading.Thread(target=client, args=(seen,)) for seen in seen_by_client]
  for thread in clients:
    thread.start()
  time.sleep(0.5)
  os.makedirs(os.path.join(base, "2"))  # a version without saved_model.pb yet is not a version
  time.sleep(0.3)
  shutil.rmtree(os.path.join(base, "2"))
  _publish(export_dir, base, 2)
  _publish(export_dir, base, 3)
  deadline = time.monotonic() + 60
  while models.get() is None or models.get().version != 3 or 1 in models.states() and \
      models.states()[1][0] != State.END:
    assert time.monotonic() < deadline, models.states()
    time.sleep(0.1)
  time.sleep(0.5)
  stop.set()
  for thread in clients:
    thread.join()
  assert not errors, errors[:3]
  for versions_seen in seen_by_client:
    assert versions_seen[0] == 1 and versions_seen[-1] == 3 and len(versions_seen) > 10
    assert versions_seen == sorted(versions_seen)  # a client never goes back to an older version
  # latest:2 keeps versions 2 and 3; a pinned request reaches the older one.
  assert _predict(channel, _rank(version=2)).model_spec.version.value == 2
  states = {s.version: s.state for s in _status(channel).model_version_status}
  assert states == {3: State.AVAILABLE, 2: State.AVAILABLE, 1: State.END}


def test_a_broken_version_is_reported_and_the_last_good_one_serves_on(running):
  base, channel, models, _ = running
  os.makedirs(os.path.join(base, "5"))
  with open(os.path.join(base, "5", "saved_model.pb"), "wb") as f:
    f.write(b"not a SavedModel")
  deadline = time.monotonic() + 30
  while 5 not in models.states() or models.states()[5][0] != State.END:
    assert time.monotonic() < deadline
    time.sleep(0.1)
  [status] = _status(channel, version=5).model_version_status
  assert status.state == State.END and "(retry 1 of 2 in 0.3 s)" in status.status.error_message
  assert _predict(channel, _rank()).model_spec.version.value == 1


def test_a_version_fixed_in_place_loads_on_retry_without_a_restart(running, export_dir):
  base, channel, models, _ = running
  version = os.path.join(base, "6")
  os.makedirs(version)
  with open(os.path.join(version, "saved_model.pb"), "wb") as f:
    f.write(b"not a SavedModel")
  deadline = time.monotonic() + 30
  while 6 not in models.states():
    assert time.monotonic() < deadline
    time.sleep(0.05)
  shutil.rmtree(version)
  _publish(export_dir, base, 6)  # fixed in place: the same version number
  while models.get().version != 6:
    assert time.monotonic() < deadline, models.states()
    time.sleep(0.05)
  assert _predict(channel, _rank()).model_spec.version.value == 6
  assert [s.state for s in _status(channel, version=6).model_version_status] == [State.AVAILABLE]


def test_load_retries_stop_after_the_maximum(tmp_path):
  attempts = []

  def broken(name, version, path):
    attempts.append(version)
    raise ValueError("broken")
  os.makedirs(tmp_path / "1")
  (tmp_path / "1" / "saved_model.pb").write_bytes(b"x")
  models = versions.ModelVersions(NAME, str(tmp_path), versions.VersionPolicy(), loader=broken,
                                  max_num_load_retries=2, load_retry_interval_seconds=0)
  for _ in range(6):
    models.poll()
  assert attempts == [1, 1, 1]  # the first load and 2 retries
  assert models.states()[1] == (State.END, "ValueError: broken (no retries left)")


@pytest.mark.parametrize("shared_lock", [True, False])
def test_processes_sharing_the_load_lock_load_one_version_at_a_time(tmp_path, shared_lock):
  loading, most = [], []

  def slow(name, version, path):
    loading.append(version)
    most.append(len(loading))
    time.sleep(0.3)
    loading.remove(version)
    return versions.Servable(name, version, path, None, {})
  (tmp_path / "lock").write_bytes(b"")
  for base in ("a", "b"):
    os.makedirs(tmp_path / base / "1")
    (tmp_path / base / "1" / "saved_model.pb").write_bytes(b"x")
  models = [versions.ModelVersions(NAME, str(tmp_path / base), versions.VersionPolicy(), loader=slow,
                                   load_lock=str(tmp_path / "lock") if shared_lock else "") for base in ("a", "b")]
  threads = [threading.Thread(target=model.poll) for model in models]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert all(model.get().version == 1 for model in models)
  assert max(most) == (1 if shared_lock else 2)


def test_version_policies_and_what_counts_as_a_version(tmp_path):
  assert versions.VersionPolicy("latest:2").select([1, 5, 3]) == {3, 5}
  assert versions.VersionPolicy("all").select([1, 5]) == {1, 5}
  assert versions.VersionPolicy("specific:1,4").select([1, 5]) == {1}
  for bad in ("latest:0", "newest", "specific:", "all:3"):
    with pytest.raises(ValueError, match="expected latest:N"):
      versions.VersionPolicy(bad)
  for name, complete in (("1", True), ("2", False), ("tmp", True)):
    os.makedirs(tmp_path / name)
    if complete:
      (tmp_path / name / "saved_model.pb").write_bytes(b"")
  assert list(versions.versions_on_disk(str(tmp_path))) == [1]
  assert versions.versions_on_disk(str(tmp_path / "missing")) == {}


def test_query_reads_a_users_history_in_the_order_ingestion_gives_it(tmp_path):
  # Same second: file order (20 before 10), not id order; a row ingestion rejects is left out.
  ratings = ("userId,movieId,rating,timestamp\n7,30,4.0,900000005\n7,20,5.0,900000000\n7,10,2.0,900000000\n"
             "7,40,x,900000001\n")
  _, read = query.read_movielens(conftest.write_movielens(tmp_path, ratings=ratings))
  assert read == {7: [(900000000, 20, 1), (900000000, 10, 0), (900000005, 30, 1)]}


def test_query_prints_ranked_candidates_with_titles(running, tmp_path, capsys):
  _, _, _, port = running
  conftest.write_movielens(tmp_path / "movielens")
  titles, ratings = query.read_movielens(str(tmp_path / "movielens"))
  user = next(iter(ratings))
  query.main(["--server", f"127.0.0.1:{port}", "--model_name", NAME, "--user", str(user),
              "--data_root", str(tmp_path / "movielens"), "--candidates", "1,2,3", "--new_item", "A new film (2030)"])
  out = capsys.readouterr().out
  assert f"{NAME} version 1, signature rank, 127.0.0.1:{port}: 4 candidates ranked" in out
  assert "no content encoder model 'content_encoder'; new items get the fallback score" in out
  rows = [line for line in out.splitlines() if line[:4].strip().isdigit()]
  assert len(rows) == 4 and "A new film (2030)" in out and titles[1].split(". Genres")[0] in out


class _TextEncoder(tf.Module):
  """Stands in for the content encoder: "item <i>" -> the catalog's content vector of item i."""

  def __init__(self, vectors):
    super().__init__()
    self.vectors = tf.constant(vectors)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def serve(self, text):
    rows = tf.strings.to_number(tf.strings.regex_replace(text, "[^0-9]", ""), tf.int64) - 1
    return {"embedding": tf.gather(self.vectors, rows)}


def test_a_new_item_is_embedded_by_the_encoder_model_then_ranked_through_its_content(tmp_path, export_dir, capsys):
  """query -> content_encoder servable -> rank_with_embeddings: a new item bringing item 3's text scores as
  item 3 does through the catalog (a dense model: the same vector)."""
  encoder = _TextEncoder(_VECTORS)
  tf.saved_model.save(encoder, str(tmp_path / "content_encoder" / "1"), signatures={"serving_default": encoder.serve})
  os.makedirs(tmp_path / NAME)
  _publish(export_dir, str(tmp_path / NAME), 1)
  grpc_server, port, models = server.serve_models(
      [model_config.ModelConfig(NAME, str(tmp_path / NAME)),
       model_config.ModelConfig("content_encoder", str(tmp_path / "content_encoder"))], port=0, poll_seconds=0.1)
  try:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
      new = 10 ** 9
      embeddings = query.candidate_embeddings(channel, [3, new], {new: "item 3"})
      np.testing.assert_array_equal(embeddings, [np.zeros(6), _VECTORS[2]])
      response = _predict(channel, query.rank_request(NAME, (2,), 2, (3, new), embeddings))
      scores = tf.make_ndarray(response.outputs["scores"])
      assert scores[0] == scores[1]
      assert [s.decode() for s in tf.make_ndarray(response.outputs["scored_by"])] == ["catalog", "content"]
      conftest.write_movielens(tmp_path / "movielens")
      query.main(["--server", f"127.0.0.1:{port}", "--model_name", NAME, "--history", "2",
                  "--data_root", str(tmp_path / "movielens"), "--candidates", "3", "--new_item", "item 3"])
  finally:
    grpc_server.stop(0)
    for model in models.values():
      model.stop()
  out = capsys.readouterr().out
  assert "signature rank_with_embeddings" in out
  assert [line.split()[3] for line in out.splitlines() if line[:4].strip().isdigit()] == ["catalog", "content"]


def test_a_model_config_file_serves_several_models_each_with_its_policy(tmp_path, export_dir):
  for name, versions_present in (("ranker", (1, 2)), ("other", (4,))):
    os.makedirs(tmp_path / name)
    for version in versions_present:
      _publish(export_dir, str(tmp_path / name), version)
  config = tmp_path / "models.config"
  config.write_text(f"""model_config_list {{
    config {{ name: "ranker" base_path: "{tmp_path / 'ranker'}" model_version_policy {{ all {{}} }} }}
    config {{ name: "other" base_path: "{tmp_path / 'other'}" }}
  }}""")
  grpc_server, port, models = server.serve_models(model_config.parse(config.read_text()), port=0, poll_seconds=0.1)
  try:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
      assert {s.version for s in _status(channel, name="ranker").model_version_status} == {1, 2}
      assert _predict(channel, query.rank_request("ranker", (2,), 2, (1,), version=1)).model_spec.version.value == 1
      assert _predict(channel, query.rank_request("other", (2,), 2, (1,))).model_spec.version.value == 4
      assert _error(lambda: _predict(channel, query.rank_request(NAME, (2,), 2, (1,))))[0] == \
          grpc.StatusCode.NOT_FOUND
  finally:
    grpc_server.stop(0)
    for model in models.values():
      model.stop()


def test_the_sessions_thread_pools_come_from_the_tensorflow_parallelism_flags(running, tmp_path, export_dir):
  _, channel, _, _ = running
  base = str(tmp_path / "one_thread")
  os.makedirs(base)
  _publish(export_dir, base, 1)
  grpc_server, port, model = server.serve(NAME, base, port=0, session_config=config_pb2.ConfigProto(
      intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))
  try:
    config = model.get().session._config
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 1)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as one_thread:
      got, want = _predict(one_thread, _rank(version=1)).outputs, _predict(channel, _rank(version=1)).outputs
    assert set(got) == set(want)
    for alias in want:  # the same model: threads change only the order of float sums
      got_value, want_value = tf.make_ndarray(got[alias]), tf.make_ndarray(want[alias])
      if want_value.dtype.kind == "f":
        np.testing.assert_allclose(got_value, want_value, rtol=1e-6)
      else:
        np.testing.assert_array_equal(got_value, want_value)
  finally:
    grpc_server.stop(0)
    model.stop()


def test_a_second_single_process_server_cannot_take_the_port(running, tmp_path):
  base, _, _, port = running
  with pytest.raises(OSError, match=f"cannot bind 127.0.0.1:{port}"):
    server.serve(NAME, base, port=port)


def test_server_processes_share_the_port_and_count_every_request_in_the_metrics(tmp_path, export_dir):
  """--server_processes 2: connections spread over both, one scrape sums both, a killed process comes back
  and both end with the first."""
  base = tmp_path / NAME
  os.makedirs(base)
  _publish(export_dir, str(base), 1)
  (tmp_path / "monitoring.config").write_text('prometheus_config { enable: true path: "/metrics" }')
  port, rest_port = demo.free_port(), demo.free_port()
  first = subprocess.Popen(
      [sys.executable, "-m", "serving.server", "--model_name", NAME, "--model_base_path", str(base),
       "--port", str(port), "--rest_api_port", str(rest_port), "--server_processes", "2",
       "--monitoring_config_file", str(tmp_path / "monitoring.config")],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  try:
    serving = 0
    for line in first.stdout:  # each process prints its "gRPC on ... (process i of 2)" once serving
      serving += "of 2)" in line
      if serving == 2:
        break
    for _ in range(20):  # a new connection each: the kernel spreads them over the processes
      with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        _predict(channel, query.rank_request(NAME, (2,), 2, (1,)))
    time.sleep(2.5)  # each process publishes its counters every second
    count = (f':tensorflow:serving:request_count{{model_name="{NAME}",model_version="1",signature_name="rank",'
             'API="Predict",status="OK"} 20')
    for _ in range(4):  # scrapes, too, land on either process
      with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/metrics", timeout=20) as response:
        assert count in response.read().decode().splitlines()
    (other,) = server.child_processes(first.pid)
    os.kill(other, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while server.child_processes(first.pid) in ([], [other]) and time.monotonic() < deadline:
      time.sleep(0.2)
    (restarted,) = server.child_processes(first.pid)
    assert restarted != other
  finally:
    first.terminate()
    first.wait(timeout=60)
  assert not os.path.exists(f"/proc/{restarted}")


def _examples_request(item_ids):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = NAME
  request.inputs["examples"].CopyFrom(tf.make_tensor_proto(
      [conftest.example(item_id=i).SerializeToString() for i in item_ids]))
  return request


def test_with_batching_concurrent_examples_requests_get_the_scores_they_get_alone(running, tmp_path, export_dir):
  """--enable_batching: serving_default requests batched together answer exactly as they do unbatched."""
  _, channel, _, _ = running
  alone = {i: tf.make_ndarray(_predict(channel, _examples_request([i, i + 1])).outputs["probability"])
           for i in range(1, 9)}
  (tmp_path / "batching.config").write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 200000 }")
  args = argparse.Namespace(enable_batching="true", batching_parameters_file=str(tmp_path / "batching.config"))
  batching = server._batching(args)
  assert batching.parameters == BatchingParameters(max_batch_size=8, batch_timeout_micros=200000)
  os.makedirs(tmp_path / "batched")
  _publish(export_dir, str(tmp_path / "batched"), 1)
  grpc_server, port, models = server.serve(NAME, str(tmp_path / "batched"), port=0, batching=batching)
  answers = {}
  try:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as batched:
      threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, _predict(batched, _examples_request(
          [i, i + 1])))) for i in alone]
      for thread in threads:
        thread.start()
      for thread in threads:
        thread.join()
  finally:
    grpc_server.stop(0)
    models.stop()
  for i, probability in alone.items():  # within float rounding: a batch pads the history attention's keys wider
    np.testing.assert_allclose(tf.make_ndarray(answers[i].outputs["probability"]), probability, rtol=1e-6)
  assert len(models.get(1).batchers) == 1  # the requests went through serving_default's batcher
  with pytest.raises(ValueError, match="read only with --enable_batching"):
    server._batching(argparse.Namespace(enable_batching="false", batching_parameters_file="b.config"))
