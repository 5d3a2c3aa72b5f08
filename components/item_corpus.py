"""Reading the item corpus (the `items` Examples artifact of MovieLensExampleGen)."""

import os
from typing import List

import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils

ITEMS_SPLIT = "items"


def files_pattern(items: types.Artifact) -> str:
  return os.path.join(artifact_utils.get_split_uri([items], ITEMS_SPLIT), "*")


def read_ids(items: types.Artifact) -> List[int]:
  spec = {"item_id": tf.io.FixedLenFeature([], tf.int64)}
  batches = (tf.data.TFRecordDataset(tf.io.gfile.glob(files_pattern(items)), compression_type="GZIP")
             .batch(4096).map(lambda records: tf.io.parse_example(records, spec)["item_id"]))
  return [int(i) for batch in batches.as_numpy_iterator() for i in batch]
