"""Executor of EmbeddingImporter: checks precomputed item embeddings and writes them as ItemEmbeddings."""

import os
from typing import Any, Dict, List

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from formats import item_corpus, item_embeddings, spans
from formats.errors import InputDataError


def load_npz(path: str):
  """(item_ids [N], embeddings [N, D]) from an .npz file with arrays `item_ids` and `embeddings`."""
  if not tf.io.gfile.exists(path):
    raise InputDataError(f"{path}: precomputed embeddings file not found")
  try:
    with tf.io.gfile.GFile(path, "rb") as f, np.load(f, allow_pickle=False) as data:
      ids, vectors = data["item_ids"], data["embeddings"]
  except (KeyError, ValueError, OSError) as e:
    raise InputDataError(f"{path}: expected an .npz file with arrays 'item_ids' [N] and "
                         f"'embeddings' [N, D] ({e})") from e
  if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
    raise InputDataError(f"{path}: 'item_ids' must be a 1-D integer array, got {ids.dtype}{ids.shape}")
  if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
    raise InputDataError(f"{path}: 'embeddings' must be [{ids.shape[0]}, D], got {vectors.shape}")
  return ids.astype(np.int64), vectors.astype(np.float32)


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    spans.inherit_span(input_dict, output_dict)
    path = exec_properties["embeddings_path"]
    ids, vectors = load_npz(path)
    dim = int(exec_properties.get("dim") or vectors.shape[1])
    corpus_ids = item_corpus.read_ids(artifact_utils.get_single_instance(input_dict["items"]))
    item_embeddings.check(ids, vectors, dim, corpus_ids, source=path)

    output = artifact_utils.get_single_instance(output_dict["embeddings"])
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    file_name = f"{item_embeddings.FILE_PREFIX}-00000-of-00001{item_embeddings.FILE_SUFFIX}"
    with tf.io.TFRecordWriter(os.path.join(output.uri, file_name), options) as writer:
      for item_id, vector in zip(ids, vectors):
        writer.write(item_embeddings.to_example(int(item_id), vector))
    item_embeddings.set_properties(output, dim=dim, count=len(ids), source=f"precomputed:{path}")
