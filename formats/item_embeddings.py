"""The ItemEmbeddings artifact's format (item id -> float vector) and the checks every producer runs.

Files: `<uri>/embeddings-*.tfrecord.gz`, GZIP TFRecords of tf.Example {item_id: int64, embedding:
float[dim]}; custom properties `dim`, `count` and `source`.
"""

import os
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tfx import types

from formats.errors import InputDataError

FILE_PREFIX = "embeddings"
FILE_SUFFIX = ".tfrecord.gz"
_MAX_NAMED = 10


def to_example(item_id: int, vector: Sequence[float]) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      "item_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[item_id])),
      "embedding": tf.train.Feature(float_list=tf.train.FloatList(value=vector)),
  })).SerializeToString()


def from_example(record: bytes) -> Tuple[int, np.ndarray]:
  feature = tf.train.Example.FromString(record).features.feature
  return (feature["item_id"].int64_list.value[0],
          np.asarray(feature["embedding"].float_list.value, np.float32))


def files_pattern(uri: str) -> str:
  return os.path.join(uri, f"{FILE_PREFIX}*{FILE_SUFFIX}")


def load(artifact: types.Artifact) -> Tuple[np.ndarray, np.ndarray]:
  """(item_ids int64 [N], embeddings float32 [N, dim]) sorted by item id."""
  ids, vectors = [], []
  files = tf.io.gfile.glob(files_pattern(artifact.uri))
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
    item_id, vector = from_example(record)
    ids.append(item_id)
    vectors.append(vector)
  order = np.argsort(ids)
  return np.asarray(ids, np.int64)[order], np.stack(vectors)[order] if vectors else np.zeros((0, 0))


def _named(ids: Iterable[int]) -> str:
  ids = sorted(ids)
  more = f" and {len(ids) - _MAX_NAMED} more" if len(ids) > _MAX_NAMED else ""
  return ", ".join(str(i) for i in ids[:_MAX_NAMED]) + more


def vector_problem(vector: np.ndarray, dim: int) -> str:
  """Why one vector is unusable, or '' when it is fine."""
  if vector.shape != (dim,):
    return f"dimension {vector.shape[0] if vector.ndim == 1 else vector.shape}, expected {dim}"
  if not np.all(np.isfinite(vector)):
    return "NaN or Inf values"
  if not np.any(vector):
    return "all-zero vector"
  return ""


def check(ids: Sequence[int], vectors: Sequence[np.ndarray], dim: int,
          corpus_ids: Iterable[int], source: str) -> None:
  """Raises InputDataError naming the items whose embeddings are unusable, duplicated,
  unknown to the corpus or missing from it."""
  problems: Dict[str, List[int]] = {}
  for item_id, vector in zip(ids, vectors):
    problem = vector_problem(np.asarray(vector), dim)
    if problem:
      problems.setdefault(problem, []).append(int(item_id))
  seen, duplicates = set(), set()
  for item_id in ids:
    (duplicates if item_id in seen else seen).add(int(item_id))
  corpus = set(int(i) for i in corpus_ids)
  if duplicates:
    problems["duplicate item ids"] = sorted(duplicates)
  if seen - corpus:
    problems["item ids absent from the item corpus"] = sorted(seen - corpus)
  if corpus - seen:
    problems["corpus items without an embedding"] = sorted(corpus - seen)
  if problems:
    lines = "\n  ".join(f"{why}: {len(items)} items: {_named(items)}" for why, items in problems.items())
    raise InputDataError(f"{source}: unusable item embeddings:\n  {lines}")


def set_properties(artifact: types.Artifact, dim: int, count: int, source: str) -> None:
  artifact.set_int_custom_property("dim", dim)
  artifact.set_int_custom_property("count", count)
  artifact.set_string_custom_property("source", source)
