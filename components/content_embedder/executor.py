"""Beam executor of ContentEmbedder: exports the content encoder, then embeds every item with it.

The encoder is exported once as a SavedModel (string -> 384 floats) into the `encoder` artifact and
every Beam worker loads that same file once; the serving model can later embed unknown items' text
with the identical graph. With previous embeddings (daily runs) only the items absent from them are
embedded, and their records are copied unchanged; without `export_encoder` the encoder goes to the
execution's temp folder instead, and only when there is something to embed. The pipeline's shapes
(components/beam_io.py) are chosen to run on every Beam runner, Dask's included.
"""

import os
from typing import AbstractSet, Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from formats import item_corpus, item_embeddings, spans
from formats.errors import InputDataError
from models.content_encoder import encoder as content_encoder
from components import beam_io


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


def _previous_ids(previous: Optional[types.Artifact]) -> AbstractSet[int]:
  """Ids of the previous embeddings, after checking that their vectors fit this encoder."""
  if previous is None:
    return frozenset()
  dim = previous.get_int_custom_property("dim")
  if dim != content_encoder.EMBEDDING_DIM:
    raise InputDataError(
        f"the previous item embeddings at {previous.uri} are {dim}-d, {content_encoder.MODEL_NAME} "
        f"gives {content_encoder.EMBEDDING_DIM}-d: embed every item again (no previous_embeddings)")
  return frozenset(int(i) for i in item_embeddings.load(previous)[0])


class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    spans.inherit_span(input_dict, output_dict)
    items = artifact_utils.get_single_instance(input_dict["items"])
    previous = (artifact_utils.get_single_instance(input_dict["previous_embeddings"])
                if input_dict.get("previous_embeddings") else None)
    encoder = artifact_utils.get_single_instance(output_dict["encoder"])
    output = artifact_utils.get_single_instance(output_dict["embeddings"])
    previous_ids = _previous_ids(previous)
    corpus_ids = item_corpus.read_ids(items)
    new_ids = set(corpus_ids) - previous_ids
    export = bool(exec_properties.get("export_encoder", 1))
    frozen = input_dict.get("frozen_encoder")
    if frozen:  # The SID refresh's encoder: loading it is faster than building MiniLM again.
      saved_model_dir = path_utils.serving_model_path(artifact_utils.get_single_uri(frozen))
    else:
      saved_model_dir = (path_utils.serving_model_path(encoder.uri) if export
                         # The launcher removes its temp folder after the run: 89 MB nobody reads again.
                         else os.path.join(self._get_tmp_dir(), "encoder"))
    if not frozen and (export or new_ids):
      content_encoder.export_saved_model(saved_model_dir)
    encoder.set_int_custom_property("exported", int(export))
    batch_size = int(exec_properties.get("batch_size") or 64)

    with self._make_beam_pipeline() as p:
      parts = []
      if new_ids:
        parts.append(
            p
            | "ReadItems" >> beam_io.read_tfrecords(item_corpus.files_pattern(items))
            | "IdAndText" >> beam.Map(_id_and_text)
            | "OnlyNew" >> beam.Filter(lambda item, known: item[0] not in known, known=previous_ids)
            # A fixed size: bench/encoder.py measures which one is fastest; adaptive sizing only adds noise.
            | "Batch" >> beam_io.Batches(batch_size, len(new_ids))
            | "Embed" >> beam.ParDo(_Embed(saved_model_dir))
            | "ToExample" >> beam.MapTuple(item_embeddings.to_example))
      if previous is not None:
        # The records themselves, so that an item's vector never changes once published.
        parts.append(p | "ReadPrevious" >> beam_io.read_tfrecords(
            item_embeddings.files_pattern(previous.uri)))
      files = beam_io.TFRecordFiles(os.path.join(output.uri, item_embeddings.FILE_PREFIX),
                                         item_embeddings.FILE_SUFFIX)
      _ = ({"embeddings": tuple(parts) | "Merge" >> beam.Flatten(pipeline=p)}
           | "Write" >> beam_io.WriteFiles({"embeddings": files}))

    # The encoder never yields NaN or zero vectors for valid weights; checking anyway keeps a broken
    # encoder from publishing garbage that every later stage would inherit. Previous items that
    # left the corpus keep their vectors (and so their Semantic IDs).
    ids, vectors = item_embeddings.load(output)
    item_embeddings.check(ids, vectors, content_encoder.EMBEDDING_DIM, set(corpus_ids) | previous_ids,
                          source="ContentEmbedder output")
    item_embeddings.set_properties(output, dim=content_encoder.EMBEDDING_DIM, count=len(ids),
                                   source=content_encoder.MODEL_NAME)
    output.set_int_custom_property("new_items", len(new_ids))
