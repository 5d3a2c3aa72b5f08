"""The ItemEmbeddings artifact's format (item id -> float vector) and the checks every producer runs.

Files: `<uri>/embeddings-*.tfrecord.gz`, GZIP TFRecords of tf.Example {item_id: int64, embedding:
float[dim]}; custom properties `dim`, `count` and `source`.
"""

import os
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tfx import types

from formats import tf_examples
from formats.errors import InputDataError

FILE_PREFIX = "embeddings"
FILE_SUFFIX = ".tfrecord.gz"
MAX_NAMED = 10  # Items named in an error, per problem.


def to_example(item_id: int, vector: Sequence[float]) -> bytes:
  return tf_examples.example(int64s={"item_id": [item_id]}, floats={"embedding": vector}).SerializeToString()


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


def _named(count: int, first_ids: Sequence[int]) -> str:
  more = f" and {count - MAX_NAMED} more" if count > MAX_NAMED else ""
  return ", ".join(str(i) for i in first_ids[:MAX_NAMED]) + more


def vector_problem(vector: np.ndarray, dim: int) -> str:
  """Why one vector is unusable, or '' when it is fine."""
  if vector.shape != (dim,):
    return f"dimension {vector.shape[0] if vector.ndim == 1 else vector.shape}, expected {dim}"
  if not np.all(np.isfinite(vector)):
    return "NaN or Inf values"
  if not np.any(vector):
    return "all-zero vector"
  return ""


def id_problems(vector_problems: Sequence[str], in_corpus: bool) -> List[str]:
  """Why the records of one item id are unusable, from each record's vector_problem: theirs, more
  than one record, an id unknown to the corpus or no record at all; [] when all is well."""
  problems = sorted({problem for problem in vector_problems if problem})
  if len(vector_problems) > 1:
    problems.append("duplicate item ids")
  if not in_corpus:
    problems.append("item ids absent from the item corpus")
  if not vector_problems:
    problems.append("corpus items without an embedding")
  return problems


def raise_problems(problems: Dict[str, Tuple[int, Sequence[int]]], source: str) -> None:
  """Raises InputDataError when there are problems (why -> number of items, their smallest ids in
  order, MAX_NAMED of them or more), naming the first items of each."""
  if problems:
    lines = "\n  ".join(f"{why}: {count} items: {_named(count, first_ids)}"
                        for why, (count, first_ids) in sorted(problems.items()))
    raise InputDataError(f"{source}: unusable item embeddings:\n  {lines}")


def check(ids: Sequence[int], vectors: Sequence[np.ndarray], dim: int,
          corpus_ids: Iterable[int], source: str) -> None:
  """Raises InputDataError naming the items whose embeddings are unusable, duplicated,
  unknown to the corpus or missing from it."""
  corpus = set(int(i) for i in corpus_ids)
  records: Dict[int, List[str]] = {item_id: [] for item_id in corpus}
  for item_id, vector in zip(ids, vectors):
    records.setdefault(int(item_id), []).append(vector_problem(np.asarray(vector), dim))
  problems: Dict[str, List[int]] = {}
  for item_id, vector_problems in sorted(records.items()):
    for why in id_problems(vector_problems, item_id in corpus):
      problems.setdefault(why, []).append(item_id)
  raise_problems({why: (len(items), items) for why, items in problems.items()}, source)


def set_properties(artifact: types.Artifact, dim: int, count: int, source: str) -> None:
  artifact.set_int_custom_property("dim", dim)
  artifact.set_int_custom_property("count", count)
  artifact.set_string_custom_property("source", source)
