"""Reading the item corpus (the `items` Examples artifact of MovieLensExampleGen)."""

import os
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils

ITEMS_SPLIT = "items"


def files_pattern(items: types.Artifact) -> str:
  return os.path.join(artifact_utils.get_split_uri([items], ITEMS_SPLIT), "*")


def read_int_features(items: types.Artifact, names: Sequence[str]) -> Dict[str, np.ndarray]:
  """Single-valued int64 features of every item, as arrays in file order."""
  spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in names}
  batches = (tf.data.TFRecordDataset(tf.io.gfile.glob(files_pattern(items)), compression_type="GZIP")
             .batch(4096).map(lambda records: tf.io.parse_example(records, spec)))
  columns: Dict[str, List[np.ndarray]] = {name: [] for name in names}
  for batch in batches.as_numpy_iterator():
    for name in names:
      columns[name].append(batch[name])
  return {name: np.concatenate(parts) if parts else np.zeros(0, np.int64)
          for name, parts in columns.items()}


def read_ids(items: types.Artifact) -> List[int]:
  return read_int_features(items, ["item_id"])["item_id"].tolist()
