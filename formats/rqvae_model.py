"""The RQVAEModel artifact's own files beside its SavedModel (Format-Serving/, models/rqvae/saved_model.py):
the ids of the items the RQ-VAE learned from. An item not among them got its SID from a model that never saw
it: the daily runs' new items, until the next SID refresh."""

import os
from typing import Optional

import numpy as np
import tensorflow as tf

TRAIN_ITEMS_FILE = "train_item_ids.npy"


def write_train_items(uri: str, item_ids: np.ndarray) -> None:
  with tf.io.gfile.GFile(os.path.join(uri, TRAIN_ITEMS_FILE), "wb") as f:
    np.save(f, np.sort(np.asarray(item_ids, np.int64)))


def train_item_ids(uri: str) -> Optional[np.ndarray]:
  """The sorted ids of the items the RQ-VAE at `uri` learned from; None for a model written before they were kept."""
  path = os.path.join(uri, TRAIN_ITEMS_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, "rb") as f:
    return np.load(f)
