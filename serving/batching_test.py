import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving import batching, versions
from serving.batching import Batching, BatchingParameters
from serving.predict import ServingError


class _Model(tf.Module):
  @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
  def double(self, x):
    tf.debugging.assert_non_negative(x, message="negative input")
    return {"y": 2 * x, "total": tf.reduce_sum(x, axis=1)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x"), tf.TensorSpec([], tf.float32, name="s")])
  def scale(self, x, s):
    return {"y": x * s}


@pytest.fixture(scope="module")
def servable(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("model") / "1")
  model = _Model()
  tf.saved_model.save(model, path, signatures={"serving_default": model.double, "scale": model.scale})
  return versions.load("model", 1, path)


class _CountingSession:
  def __init__(self, session):
    self.session, self.runs = session, []

  def run(self, fetches, feed):
    self.runs.append(len(next(iter(feed.values()))))
    return self.session.run(fetches, feed)


def _feed(servable, signature, **values):
  return {servable.signature_defs[signature].inputs[key].name: np.asarray(value, np.float32)
          for key, value in values.items()}


def test_parameters_from_a_text_proto_with_tf_servings_defaults():
  assert BatchingParameters.parse("") == BatchingParameters()
  assert (BatchingParameters().max_batch_size, BatchingParameters().batch_timeout_micros,
          BatchingParameters().max_enqueued_batches) == (1000, 0, 10)
  parsed = BatchingParameters.parse('max_batch_size { value: 64 }\nbatch_timeout_micros { value: 500 }\n'
                                    'thread_pool_name { value: "pool" }\nnum_batch_threads { value: 3 }')
  assert parsed == BatchingParameters(max_batch_size=64, batch_timeout_micros=500, num_batch_threads=3)
  for text, message in (("max_batch_size { value: 0 }", "must be >= 1"),
                        ("allowed_batch_sizes: 8", "cannot read 'allowed_batch_sizes: 8'"),
                        ("pad_variable_length_inputs: true", "not supported"),
                        ("batch_size { value: 3 }", "unknown or unsupported batching parameter 'batch_size'")):
    with pytest.raises(ValueError, match=message):
      BatchingParameters.parse(text, "batching.config")


def test_only_signatures_with_a_batch_dimension_everywhere_are_batched(servable):
  assert batching.batchable(servable.signature_defs["serving_default"])
  assert not batching.batchable(servable.signature_defs["scale"])  # a scalar input


def test_concurrent_requests_run_as_one_batch_and_each_gets_its_rows(servable):
  session = _CountingSession(servable.session)
  counted = versions.Servable(servable.name, servable.version, servable.path, session, servable.signature_defs)
  batcher = Batching(BatchingParameters(max_batch_size=8, batch_timeout_micros=1_000_000))
  rows = [np.full((1 + i % 2, 2), i, np.float32) for i in range(6)]  # 9 rows in all: more than one batch
  results = [None] * len(rows)

  def request(i):
    results[i] = batcher.run(counted, "serving_default", servable.signature_defs["serving_default"],
                             _feed(servable, "serving_default", x=rows[i]))
  threads = [threading.Thread(target=request, args=(i,)) for i in range(len(rows))]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  for x, result in zip(rows, results):
    np.testing.assert_array_equal(result["y"], 2 * x)
    np.testing.assert_array_equal(result["total"], x.sum(axis=1))
  # 9 rows of requests of 1 or 2: a batch of the 7 or 8 that fit, then the rest after the timeout.
  assert len(session.runs) == 2 and max(session.runs) >= 7 and sum(session.runs) == 9
  # Not batchable: run as it comes.
  scaled = batcher.run(counted, "scale", servable.signature_defs["scale"], _feed(servable, "scale", x=[1, 2], s=3))
  np.testing.assert_array_equal(scaled["y"], [3, 6])
  assert session.runs[-1] == 2


def test_a_bad_request_fails_alone_not_its_batch(servable):
  batcher = Batching(BatchingParameters(max_batch_size=2, batch_timeout_micros=5_000_000))
  signature = servable.signature_defs["serving_default"]
  outcomes = {}

  def request(name, x):
    try:
      outcomes[name] = batcher.run(servable, "serving_default", signature, _feed(servable, "serving_default", x=x))
    except tf.errors.InvalidArgumentError as e:
      outcomes[name] = e
  threads = [threading.Thread(target=request, args=("good", [[1, 2]])),
             threading.Thread(target=request, args=("bad", [[-1, 2]]))]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  np.testing.assert_array_equal(outcomes["good"]["y"], [[2, 4]])
  assert "negative input" in outcomes["bad"].message


def test_an_oversize_task_or_a_full_queue_is_refused(servable):
  batcher = Batching(BatchingParameters(max_batch_size=2, max_enqueued_batches=1))
  signature = servable.signature_defs["serving_default"]
  with pytest.raises(ServingError, match="Task size 3 is larger than maximum batch size 2") as refused:
    batcher.run(servable, "serving_default", signature, _feed(servable, "serving_default", x=np.ones((3, 2))))
  assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
  # The queue holds one batch: a second request arriving while a full one waits is turned away.
  slow = Batching(BatchingParameters(max_batch_size=2, max_enqueued_batches=1, batch_timeout_micros=2_000_000))
  waiting = threading.Thread(target=slow.run, args=(servable, "serving_default", signature,
                                                    _feed(servable, "serving_default", x=np.ones((1, 2)))))
  waiting.start()
  time.sleep(0.5)  # queued: its batch waits up to 2 s for a second row
  with pytest.raises(ServingError, match="queue to which this task was submitted is full") as refused:
    slow.run(servable, "serving_default", signature, _feed(servable, "serving_default", x=np.ones((2, 2))))
  assert refused.value.code == grpc.StatusCode.UNAVAILABLE
  waiting.join()
