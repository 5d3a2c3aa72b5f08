"""The SemanticIds artifact's format: per item its L codes (coarse to fine) and a collision suffix.

Items whose L codes coincide get suffixes 0, 1, ... in item-id order, as TIGER does, so that
(codes, suffix) is unique; an item alone with its codes has suffix 0. Files:
`<uri>/semantic_ids-*.tfrecord.gz` with tf.Example {item_id, codes: int64[L], suffix}.
"""

import os
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf
from tfx import types

from formats import tf_examples
from formats.errors import InputDataError

FILE_PREFIX = "semantic_ids"
FILE_SUFFIX = ".tfrecord.gz"


def to_example(item_id: int, codes: Sequence[int], suffix: int) -> bytes:
  return tf_examples.example(int64s={"item_id": [item_id], "codes": codes, "suffix": [suffix]}).SerializeToString()


def from_example(record: bytes) -> Tuple[int, Tuple[int, ...], int]:
  """(item_id, codes, suffix) of one record."""
  feature = tf.train.Example.FromString(record).features.feature
  return (feature["item_id"].int64_list.value[0], tuple(feature["codes"].int64_list.value),
          feature["suffix"].int64_list.value[0])


def files_pattern(uri: str) -> str:
  return os.path.join(uri, f"{FILE_PREFIX}*{FILE_SUFFIX}")


def load(artifact: types.Artifact) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(item_ids [N], codes [N, L], suffixes [N]) sorted by item id."""
  files = tf.io.gfile.glob(files_pattern(artifact.uri))
  rows = [from_example(record)
          for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()]
  ids, codes, suffixes = zip(*rows) if rows else ((), (), ())
  order = np.argsort(ids)
  return (np.asarray(ids, np.int64)[order], np.asarray(codes, np.int64)[order],
          np.asarray(suffixes, np.int64)[order])


def disambiguate(item_ids: Sequence[int]) -> list:
  """(item_id, suffix) for items that share all L codes: suffixes follow item-id order."""
  return [(item_id, suffix) for suffix, item_id in enumerate(sorted(item_ids))]


def check(item_ids: np.ndarray, codes: np.ndarray, num_levels: int, codebook_size: int) -> None:
  """InputDataError naming the items whose SID has the wrong length or a code outside [0, K)."""
  if codes.ndim != 2 or codes.shape[1] != num_levels:
    raise InputDataError(f"Semantic IDs have shape {codes.shape}, expected [items, {num_levels}] "
                         f"codes as the artifact's num_levels says")
  bad = np.flatnonzero(((codes < 0) | (codes >= codebook_size)).any(axis=1))
  if bad.size:
    shown = ", ".join(f"item {item_ids[i]}: {codes[i].tolist()}" for i in bad[:5])
    raise InputDataError(f"{bad.size} Semantic IDs have a code outside [0, {codebook_size}): {shown}")
