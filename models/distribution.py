"""The trainers' tf.distribute strategy, read from TF_CONFIG as a cluster sets it on each worker.

A cluster job (Vertex AI Training, a Kubeflow TFJob, TFX's `google_cloud_ai_platform` Trainer) starts the
same run_fn in every worker process with TF_CONFIG naming the cluster and the process's task. With more
than one worker, the trainers train under MultiWorkerMirroredStrategy: every worker holds the whole
model, reads its share of the batches (sharded by data, as the span's files may be fewer than the
workers) and the gradients are all-reduced each step. Every worker writes its export and checkpoint, as
MultiWorkerMirroredStrategy requires (saving reads the variables collectively); the chief's go to the
Trainer's output, the others' to a private directory that is deleted. Without TF_CONFIG, or with one
worker, the default strategy: the single-process trainer of the local loop.

Example:
  strategy = distribution.strategy()
  with distribution.scope(strategy):
    model = build(...)
  model.fit(distribution.sharded(dataset))
  if distribution.write_outputs(serving_model_dir, model.save):
    ...  # the chief's other outputs
"""

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, Iterator

import tensorflow as tf
from tensorflow.python.distribute import numpy_dataset

TF_CONFIG = "TF_CONFIG"


def _config() -> Dict[str, Any]:
  text = os.environ.get(TF_CONFIG)
  if not text:
    return {}
  try:
    config = json.loads(text)
  except json.JSONDecodeError as error:
    raise ValueError(f"TF_CONFIG is not JSON ({error}): {text[:200]!r}") from None
  if config.get("cluster") and "task" not in config:
    raise ValueError("TF_CONFIG names a cluster but not this process's task ({'type': ..., 'index': ...})")
  return config


def workers() -> int:
  """How many processes TF_CONFIG's cluster trains in (chief and workers); 1 without one."""
  cluster = _config().get("cluster", {})
  return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_chief() -> bool:
  """Whether this process writes the Trainer's outputs: the chief, or worker 0 of a cluster without one."""
  config = _config()
  if not config.get("cluster"):
    return True
  task = config["task"]
  has_chief = bool(config["cluster"].get("chief"))
  return task["type"] == "chief" or (not has_chief and task["type"] == "worker" and task.get("index", 0) == 0)


def strategy() -> tf.distribute.Strategy:
  """MultiWorkerMirroredStrategy over TF_CONFIG's cluster of more than one worker, else the default."""
  if workers() > 1:
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def _local_strings(next_creator, **kwargs):
  # MultiWorkerMirroredStrategy broadcasts every variable's initial value from the chief, and its collective
  # has no string kernel (TF 2.16): TPUEmbedding's SparseCore-layouts variable, an empty string unused off
  # TPU, would fail the build. Each worker keeps its own copy (what the strategy does for a variable
  # placed on one device).
  if kwargs.get("dtype") == tf.string and kwargs.get("colocate_with") is None:
    kwargs["colocate_with"] = numpy_dataset.SingleDevice("/device:CPU:0")
  return next_creator(**kwargs)


@contextlib.contextmanager
def scope(distribute: tf.distribute.Strategy) -> Iterator[None]:
  """`distribute.scope()`, in which models are built and restored."""
  with distribute.scope(), tf.variable_creator_scope(_local_strings):
    yield


def sharded(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """`dataset` sharded across workers by its batches: every worker reads the files, keeps its share."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return dataset.with_options(options)


def write_outputs(directory: str, write: Callable[[str], None]) -> bool:
  """Calls `write` with `directory` on the chief, and on another worker with a same-named directory in a
  private folder, deleted after; -> whether this process is the chief (which writes the other outputs)."""
  if is_chief():
    write(directory)
    return True
  private = tempfile.mkdtemp(prefix=f"worker-{_config()['task'].get('index', 0)}-")
  try:
    write(os.path.join(private, os.path.basename(directory.rstrip("/"))))
  finally:
    shutil.rmtree(private, ignore_errors=True)
  return False
