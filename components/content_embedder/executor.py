"""Beam executor of ContentEmbedder: exports the content encoder, then embeds every item with it.

The encoder is exported once as a SavedModel (string -> 384 floats) into the `encoder` artifact and
every Beam worker loads that same file once; the serving model can later embed unknown items' text
with the identical graph.
"""

import os
from typing import Any, Dict, Iterable, List, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from formats import item_corpus, item_embeddings
models_stub = None
from models.content_encoder import encoder as content_encoder


class _Embed(beam.DoFn):
  """Embeds batches of (item_id, text) with the exported encoder, loaded once per worker."""

  def __init__(self, saved_model_dir: str):
    self._saved_model_dir = saved_model_dir
    self._embed = None

  def setup(self):
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops before loading)
    self._embed = tf.saved_model.load(self._saved_model_dir).signatures["serving_default"]

  def process(self, batch: List[Tuple[int, str]]) -> Iterable[Tuple[int, np.ndarray]]:
    ids, texts = zip(*batch)
    vectors = self._embed(text=tf.constant(texts))[content_encoder.OUTPUT_KEY].numpy()
    yield from zip(ids, vectors)


def _id_and_text(record: bytes) -> Tuple[int, str]:
  features = tf.train.Example.FromString(record).features.feature
  return (features["item_id"].int64_list.value[0],
          features["content_text"].bytes_list.value[0].decode("utf-8"))


class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    items = artifact_utils.get_single_instance(input_dict["items"])
    encoder = artifact_utils.get_single_instance(output_dict["encoder"])
    output = artifact_utils.get_single_instance(output_dict["embeddings"])
    saved_model_dir = path_utils.serving_model_path(encoder.uri)
    content_encoder.export_saved_model(saved_model_dir)
    batch_size = int(exec_properties.get("batch_size") or 64)

    with self._make_beam_pipeline() as p:
      _ = (p
           | "ReadItems" >> beam.io.ReadFromTFRecord(item_corpus.files_pattern(items))
           | "IdAndText" >> beam.Map(_id_and_text)
           # A fixed size: bench/encoder.py measures which one is fastest; adaptive sizing only adds noise.
           | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
           | "Embed" >> beam.ParDo(_Embed(saved_model_dir))
           | "ToExample" >> beam.MapTuple(item_embeddings.to_example)
           | "Write" >> beam.io.WriteToTFRecord(
               os.path.join(output.uri, item_embeddings.FILE_PREFIX),
               file_name_suffix=item_embeddings.FILE_SUFFIX))

    # The encoder never yields NaN or zero vectors for valid weights; checking anyway keeps a broken
    # encoder from publishing garbage that every later stage would inherit.
    ids, vectors = item_embeddings.load(output)
    item_embeddings.check(ids, vectors, content_encoder.EMBEDDING_DIM, item_corpus.read_ids(items),
                          source="ContentEmbedder output")
    item_embeddings.set_properties(output, dim=content_encoder.EMBEDDING_DIM, count=len(ids),
                                   source=content_encoder.MODEL_NAME)
