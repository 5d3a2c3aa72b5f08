"""TF Serving's server-side batching (--enable_batching, --batching_parameters_file): concurrent requests to
one signature of one version run as one Session.run over their inputs concatenated along the first
dimension, and each gets its own rows of the outputs back.

As in TF Serving, a signature is batched only when every input and every output has an unknown first
(batch) dimension, as `serving_default` (serialized tf.Examples -> probability) and the content encoder
(texts -> embeddings) have; `rank` takes one user's history and a scalar current item, so its requests run
on their own, batching or not. Requests join a batch only with requests whose other dimensions match
(TF Serving's `pad_variable_length_inputs` is not supported).

  max_batch_size { value: 128 }          rows per batch (TF Serving's default 1000)
  batch_timeout_micros { value: 1000 }   how long a batch waits for more rows (default 0: runs what is queued)
  max_enqueued_batches { value: 10 }     queued rows beyond this many batches are refused: UNAVAILABLE
  num_batch_threads { value: 2 }         batches run at once (default: the number of CPUs)

Example:
  batching = Batching(BatchingParameters.parse(open("batching.config").read()))
  outputs = batching.run(servable, "serving_default", signature_def, feed)   # {output alias: rows}
"""

import dataclasses
import os
import re
import threading
import time
from typing import Dict, List, Optional

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2

from serving.predict import ServingError
from serving.versions import Servable

_IDLE_SECONDS = 1.0  # a batch thread with no work for this long ends; the next request starts one


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
  """TF Serving's BatchingParameters (session_bundle_config.proto), with its defaults."""
  max_batch_size: int = 1000
  batch_timeout_micros: int = 0
  max_enqueued_batches: int = 10
  num_batch_threads: int = os.cpu_count() or 1

  def __post_init__(self):
    for field in dataclasses.fields(self):
      minimum = 0 if field.name == "batch_timeout_micros" else 1
      if getattr(self, field.name) < minimum:
        raise ValueError(f"batching parameter {field.name} must be >= {minimum}, got {getattr(self, field.name)}")

  @classmethod
  def parse(cls, text: str, source: str = "the batching parameters") -> "BatchingParameters":
    """A BatchingParameters text proto (`name { value: N }` per field). thread_pool_name is accepted (one pool
    per process here); allowed_batch_sizes and pad_variable_length_inputs are refused, not ignored."""
    known = {field.name for field in dataclasses.fields(cls)}
    values = {}
    rest = re.sub(r'thread_pool_name\s*:?\s*\{\s*value\s*:\s*"[^"]*"\s*\}', "", text)
    for name, value in re.findall(r"(\w+)\s*:?\s*\{\s*value\s*:\s*(-?\d+)\s*\}", rest):
      if name not in known:
        raise ValueError(f"{source}: unknown or unsupported batching parameter {name!r}; supported: {sorted(known)}")
      values[name] = int(value)
    leftover = re.sub(r"(\w+)\s*:?\s*\{\s*value\s*:\s*(-?\d+)\s*\}", "", rest).strip()
    if leftover:
      raise ValueError(f"{source}: cannot read {leftover.splitlines()[0]!r}; expected fields like "
                       "max_batch_size { value: 128 } (allowed_batch_sizes and pad_variable_length_inputs are not "
                       "supported)")
    return cls(**values)


def batchable(signature: meta_graph_pb2.SignatureDef) -> bool:
  """Every input and output has an unknown first dimension: the batch."""
  infos = list(signature.inputs.values()) + list(signature.outputs.values())
  return bool(signature.inputs) and all(
      not info.tensor_shape.unknown_rank and info.tensor_shape.dim and info.tensor_shape.dim[0].size == -1
      for info in infos)


class _Task:
  def __init__(self, feed: Dict[str, np.ndarray]):
    self.feed, self.rows = feed, len(next(iter(feed.values())))
    self.shapes = {name: value.shape[1:] for name, value in feed.items()}
    self.enqueued = time.monotonic()
    self.done = threading.Event()
    self.outputs: Optional[Dict[str, np.ndarray]] = None
    self.error: Optional[Exception] = None


class _SignatureBatcher:
  """The queue of one signature of one version, and the threads that run its batches."""

  def __init__(self, servable: Servable, signature: meta_graph_pb2.SignatureDef, parameters: BatchingParameters):
    self._session = servable.session
    self._fetches = {alias: info.name for alias, info in signature.outputs.items()}
    self._parameters = parameters
    self._queue: List[_Task] = []
    self._queued_rows, self._threads = 0, 0
    self._changed = threading.Condition()

  def run(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    task = _Task(feed)
    if task.rows > self._parameters.max_batch_size:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Task size {task.rows} is larger than maximum batch "
                         f"size {self._parameters.max_batch_size}")
    limit = self._parameters.max_enqueued_batches * self._parameters.max_batch_size
    with self._changed:
      if self._queued_rows + task.rows > limit:
        raise ServingError(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue to which this task was "
                           f"submitted is full ({self._parameters.max_enqueued_batches} batches)")
      self._queue.append(task)
      self._queued_rows += task.rows
      if self._threads < self._parameters.num_batch_threads:
        self._threads += 1
        threading.Thread(target=self._run_batches, name="batch", daemon=True).start()
      self._changed.notify()
    task.done.wait()
    if task.error is not None:
      raise task.error
    return task.outputs

  def _next_batch(self) -> List[_Task]:
    """The oldest task and the queued tasks of its shapes, up to max_batch_size rows, once no more fit or the
    oldest has waited batch_timeout_micros; [] when idle for _IDLE_SECONDS."""
    timeout = self._parameters.batch_timeout_micros / 1e6
    with self._changed:
      while True:
        if not self._queue:
          if not self._changed.wait(_IDLE_SECONDS) and not self._queue:
            self._threads -= 1
            return []
          continue
        first = self._queue[0]
        batch, rows, full = [], 0, False
        for task in self._queue:
          if task.shapes == first.shapes:
            fits = rows + task.rows <= self._parameters.max_batch_size
            full |= not fits
            if fits:
              batch.append(task)
              rows += task.rows
        wait = first.enqueued + timeout - time.monotonic()
        if full or rows == self._parameters.max_batch_size or wait <= 0:
          for task in batch:
            self._queue.remove(task)
          self._queued_rows -= rows
          return batch
        self._changed.wait(wait)

  def _run_batches(self) -> None:
    while True:
      batch = self._next_batch()
      if not batch:
        return
      self._run(batch)
      for task in batch:
        task.done.set()

  def _run(self, batch: List[_Task]) -> None:
    try:
      feed = {name: np.concatenate([task.feed[name] for task in batch]) for name in batch[0].feed}
      outputs = self._session.run(self._fetches, feed)
    except Exception as e:
      if len(batch) == 1:
        batch[0].error = e
        return
      # One request's bad input (a tf.Example that does not parse) must fail that request only.
      for task in batch:
        self._run([task])
      return
    start = 0
    for task in batch:
      task.outputs = {alias: value[start:start + task.rows] for alias, value in outputs.items()}
      start += task.rows


class Batching:
  """Batches requests to batchable signatures (per version and signature); runs others directly."""

  def __init__(self, parameters: BatchingParameters):
    self.parameters = parameters
    self._lock = threading.Lock()

  def batcher(self, servable: Servable, signature_name: str, signature: meta_graph_pb2.SignatureDef,
              feed: Dict[str, np.ndarray]) -> Optional[_SignatureBatcher]:
    """The signature's batcher, made once per version (None, also remembered, where the signature is not
    batchable), or None for a request whose inputs disagree on the batch size."""
    key = (self, signature_name)
    if key not in servable.batchers:
      with self._lock:  # the batchers live and go with their version
        if key not in servable.batchers:
          servable.batchers[key] = (_SignatureBatcher(servable, signature, self.parameters)
                                    if batchable(signature) else None)
    rows = {len(value) if value.ndim else None for value in feed.values()}
    return servable.batchers[key] if len(rows) == 1 else None

  def run(self, servable: Servable, signature_name: str, signature: meta_graph_pb2.SignatureDef,
          feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Every output of the signature for `feed` (tensor name -> value), batched where it can be."""
    batcher = self.batcher(servable, signature_name, signature, feed)
    if batcher is None:
      return servable.session.run({alias: info.name for alias, info in signature.outputs.items()}, feed)
    return batcher.run(feed)
