"""Beam executor of SemanticIdAssigner: every item's Semantic ID from the frozen RQ-VAE.

Workers load the SavedModel once (DoFn.setup) and encode batches; items are then grouped by their
codes to give colliding items distinct suffixes. Nothing here is specific to the DirectRunner.
"""

import json
import os
from typing import Any, Dict, Iterable, List, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from formats import item_embeddings, semantic_ids
from formats.errors import InputDataError
from models.rqvae import saved_model

STATS_FILE = ".collision_stats.json"


class _Encode(beam.DoFn):
  """Batches of (item_id, embedding) -> (codes tuple, item_id), with the model loaded once."""

  def __init__(self, export_dir: str):
    self._export_dir = export_dir
    self._encode = None

  def setup(self):
    self._encode = saved_model.load_signatures(self._export_dir)[saved_model.ENCODE]

  def process(self, batch: List[Tuple[int, np.ndarray]]) -> Iterable[Tuple[Tuple[int, ...], int]]:
    ids = [item_id for item_id, _ in batch]
    vectors = np.stack([vector for _, vector in batch]).astype(np.float32)
    codes = self._encode(embeddings=tf.constant(vectors))[saved_model.CODES_KEY].numpy()
    for item_id, row in zip(ids, codes):
      yield tuple(int(c) for c in row), item_id


def _with_suffixes(codes: Tuple[int, ...], item_ids: Iterable[int]):
  group = semantic_ids.disambiguate(item_ids)
  for item_id, suffix in group:
    yield semantic_ids.to_example(item_id, codes, suffix)
  yield beam.pvalue.TaggedOutput("group_sizes", len(group))


def _collision_stats(sizes: List[int]) -> Dict[str, int]:
  return {"items": sum(sizes), "distinct_codes": len(sizes),
          "items_sharing_codes": sum(s for s in sizes if s > 1),
          "items_with_nonzero_suffix": sum(s - 1 for s in sizes),
          "largest_collision": max(sizes, default=0)}


class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    embeddings = artifact_utils.get_single_instance(input_dict["embeddings"])
    model = artifact_utils.get_single_instance(input_dict["model"])
    output = artifact_utils.get_single_instance(output_dict["semantic_ids"])
    export_dir = path_utils.serving_model_path(model.uri)
    config = saved_model.load_config(export_dir)
    dim = embeddings.get_int_custom_property("dim")
    if dim != config.input_dim:
      raise InputDataError(f"the frozen RQ-VAE at {export_dir} expects {config.input_dim}-d "
                           f"embeddings, the item embeddings are {dim}-d")
    batch_size = int(exec_properties.get("batch_size") or 1024)
    stats_path = os.path.join(output.uri, STATS_FILE)

    with self._make_beam_pipeline() as p:
      assigned = (p
                  | "Read" >> beam.io.ReadFromTFRecord(item_embeddings.files_pattern(embeddings.uri))
                  | "Parse" >> beam.Map(item_embeddings.from_example)
                  | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
                  | "Encode" >> beam.ParDo(_Encode(export_dir))
                  | "GroupByCodes" >> beam.GroupByKey()
                  | "Suffixes" >> beam.FlatMapTuple(_with_suffixes).with_outputs(
                      "group_sizes", main="examples"))
      _ = assigned.examples | "Write" >> beam.io.WriteToTFRecord(
          os.path.join(output.uri, semantic_ids.FILE_PREFIX), file_name_suffix=semantic_ids.FILE_SUFFIX)
      _ = (assigned.group_sizes
           | "Sizes" >> beam.combiners.ToList()
           | "Stats" >> beam.Map(lambda sizes: json.dumps(_collision_stats(sizes)))
           | "WriteStats" >> beam.io.WriteToText(stats_path, shard_name_template=""))

    with tf.io.gfile.GFile(stats_path) as f:
      stats = json.load(f)
    tf.io.gfile.remove(stats_path)
    if stats["items"] != embeddings.get_int_custom_property("count"):
      raise InputDataError(f"assigned {stats['items']} Semantic IDs for "
                           f"{embeddings.get_int_custom_property('count')} item embeddings")
    output.set_int_custom_property("num_levels", config.num_levels)
    output.set_int_custom_property("codebook_size", config.codebook_size)
    for key, value in stats.items():
      output.set_int_custom_property(key, value)
    output.set_float_custom_property("unique_ratio_before_suffix",
                                     stats["distinct_codes"] / max(stats["items"], 1))
