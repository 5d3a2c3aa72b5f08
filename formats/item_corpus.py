"""Reading the item corpus (the `items` Examples artifact of SpanExampleGen)."""

import os
from typing import Dict, List

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils

ITEMS_SPLIT = "items"


def files_pattern(items: types.Artifact) -> str:
  return os.path.join(artifact_utils.get_split_uri([items], ITEMS_SPLIT), "*")


def read_features(items: types.Artifact, dtypes: Dict[str, tf.DType]) -> Dict[str, np.ndarray]:
  """Single-valued features of every item (name -> dtype), as arrays in file order."""
  spec = {name: tf.io.FixedLenFeature([], dtype) for name, dtype in dtypes.items()}
  batches = (tf.data.TFRecordDataset(tf.io.gfile.glob(files_pattern(items)), compression_type="GZIP")
             .batch(4096).map(lambda records: tf.io.parse_example(records, spec)))
  columns: Dict[str, List[np.ndarray]] = {name: [] for name in dtypes}
  for batch in batches.as_numpy_iterator():
    for name in dtypes:
      columns[name].append(batch[name])
  return {name: np.concatenate(parts) if parts else np.zeros(0, dtypes[name].as_numpy_dtype)
          for name, parts in columns.items()}


def read_ids(items: types.Artifact) -> List[int]:
  return read_features(items, {"item_id": tf.int64})["item_id"].tolist()
