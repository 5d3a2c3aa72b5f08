"""Beam executor of SemanticIdAssigner: every item's Semantic ID from the frozen RQ-VAE.

Workers load the SavedModel once (DoFn.setup) and encode batches; items are then grouped by their
codes to give colliding items distinct suffixes. With previous Semantic IDs (daily runs) only the
items absent from them are encoded: a join by item id separates old from new items, and the join by
codes puts new items after the old ones that share their codes, all in Beam, so the launcher never
holds the corpus. Nothing here is specific to the DirectRunner.
"""

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from formats import item_embeddings, semantic_ids, spans
from formats.errors import InputDataError
from models.rqvae import model as rqvae
from models.rqvae import saved_model

STATS_FILE = ".collision_stats.json"
_MAX_NAMED = 10


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


def _keyed_by_id(record: bytes) -> Tuple[int, Tuple[Tuple[int, ...], int, bytes]]:
  item_id, codes, suffix = semantic_ids.from_example(record)
  return item_id, (codes, suffix, record)


def _split_by_id(item_id: int, grouped: Dict[str, Iterable[Any]]):
  """An item's embedding and previous SID -> a new item (id, vector), an old one (codes, (suffix,
  record)) or, tagged `orphans`, an item of the previous SIDs without an embedding."""
  vectors, previous = list(grouped["embeddings"]), list(grouped["previous"])
  if not vectors:
    yield beam.pvalue.TaggedOutput("orphans", item_id)
  elif previous:
    codes, suffix, record = previous[0]
    yield beam.pvalue.TaggedOutput("old", (codes, (suffix, record)))
  else:
    yield item_id, vectors[0]


def _with_suffixes(codes: Tuple[int, ...], grouped: Dict[str, Iterable[Any]]):
  """Old items keep their record byte for byte; new ones take the suffixes after the largest old
  one, in id order, so that no published SID ever changes."""
  old, new = list(grouped["old"]), list(grouped["new"])
  yield from (record for _, record in old)
  first = max((suffix for suffix, _ in old), default=-1) + 1
  for item_id, suffix in semantic_ids.disambiguate(new):
    yield semantic_ids.to_example(item_id, codes, first + suffix)
  yield beam.pvalue.TaggedOutput("groups", (len(old), len(new)))


def _stats_json(groups: List[Tuple[int, int]], first_orphans: List[int], orphans: int) -> str:
  """Collision counts from the (old, new) item counts of each group of shared codes."""
  sizes = [old + new for old, new in groups]
  return json.dumps({"items": sum(sizes), "new_items": sum(new for _, new in groups),
                     "distinct_codes": len(sizes),
                     "items_sharing_codes": sum(s for s in sizes if s > 1),
                     "items_with_nonzero_suffix": sum(s - 1 for s in sizes),
                     "largest_collision": max(sizes, default=0),
                     "orphans": orphans, "first_orphans": first_orphans})


def _check_previous(previous: types.Artifact, config: rqvae.RQVAEConfig, export_dir: str) -> None:
  found = [previous.get_int_custom_property(key) for key in ("num_levels", "codebook_size")]
  if found != [config.num_levels, config.codebook_size]:
    raise InputDataError(
        f"SIDs from another RQ-VAE: the previous Semantic IDs at {previous.uri} have {found[0]} levels "
        f"of {found[1]} codes, the frozen RQ-VAE at {export_dir} {config.num_levels} of "
        f"{config.codebook_size}; assign every item again (no previous_semantic_ids)")


def _split(p: beam.Pipeline, vectors: beam.PCollection, previous: Optional[types.Artifact]):
  """(new items' (id, vector), old items' (codes, (suffix, record)), ids of orphans)."""
  if previous is None:
    return vectors, p | "NoOldItems" >> beam.Create([]), p | "NoOrphans" >> beam.Create([])
  split = ({"embeddings": vectors,
            "previous": (p
                         | "ReadPrevious" >> beam.io.ReadFromTFRecord(
                             semantic_ids.files_pattern(previous.uri))
                         | "KeyPrevious" >> beam.Map(_keyed_by_id))}
           | "GroupById" >> beam.CoGroupByKey()
           | "SplitById" >> beam.FlatMapTuple(_split_by_id).with_outputs("old", "orphans", main="new"))
  return split.new, split.old, split.orphans


class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    spans.inherit_span(input_dict, output_dict)
    embeddings = artifact_utils.get_single_instance(input_dict["embeddings"])
    model = artifact_utils.get_single_instance(input_dict["model"])
    previous = (artifact_utils.get_single_instance(input_dict["previous_semantic_ids"])
                if input_dict.get("previous_semantic_ids") else None)
    output = artifact_utils.get_single_instance(output_dict["semantic_ids"])
    export_dir = path_utils.serving_model_path(model.uri)
    config = saved_model.load_config(export_dir)
    dim = embeddings.get_int_custom_property("dim")
    if dim != config.input_dim:
      raise InputDataError(f"the frozen RQ-VAE at {export_dir} expects {config.input_dim}-d "
                           f"embeddings, the item embeddings are {dim}-d")
    if previous is not None:
      _check_previous(previous, config, export_dir)
    batch_size = int(exec_properties.get("batch_size") or 1024)
    stats_path = os.path.join(output.uri, STATS_FILE)

    with self._make_beam_pipeline() as p:
      vectors = (p
                 | "Read" >> beam.io.ReadFromTFRecord(item_embeddings.files_pattern(embeddings.uri))
                 | "Parse" >> beam.Map(item_embeddings.from_example))
      new, old, orphans = _split(p, vectors, previous)
      encoded = (new
                 | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
                 | "Encode" >> beam.ParDo(_Encode(export_dir)))
      assigned = ({"old": old, "new": encoded}
                  | "GroupByCodes" >> beam.CoGroupByKey()
                  | "Suffixes" >> beam.FlatMapTuple(_with_suffixes).with_outputs("groups", main="examples"))
      _ = assigned.examples | "Write" >> beam.io.WriteToTFRecord(
          os.path.join(output.uri, semantic_ids.FILE_PREFIX), file_name_suffix=semantic_ids.FILE_SUFFIX)
      first_orphans = orphans | "FirstOrphans" >> beam.combiners.Top.Smallest(_MAX_NAMED)
      orphan_count = orphans | "CountOrphans" >> beam.combiners.Count.Globally()
      _ = (assigned.groups
           | "Groups" >> beam.combiners.ToList()
           | "Stats" >> beam.Map(_stats_json, beam.pvalue.AsSingleton(first_orphans),
                                 beam.pvalue.AsSingleton(orphan_count))
           | "WriteStats" >> beam.io.WriteToText(stats_path, shard_name_template=""))

    with tf.io.gfile.GFile(stats_path) as f:
      stats = json.load(f)
    tf.io.gfile.remove(stats_path)
    orphans, first_orphans = stats.pop("orphans"), stats.pop("first_orphans")
    if orphans:
      raise InputDataError(f"{orphans} items of the previous Semantic IDs at {previous.uri} have no "
                           f"embedding in {embeddings.uri}, the first: "
                           f"{', '.join(str(i) for i in first_orphans)}")
    if stats["items"] != embeddings.get_int_custom_property("count"):
      raise InputDataError(f"assigned {stats['items']} Semantic IDs for "
                           f"{embeddings.get_int_custom_property('count')} item embeddings")
    output.set_int_custom_property("num_levels", config.num_levels)
    output.set_int_custom_property("codebook_size", config.codebook_size)
    for key, value in stats.items():
      output.set_int_custom_property(key, value)
    output.set_float_custom_property("unique_ratio_before_suffix",
                                     stats["distinct_codes"] / max(stats["items"], 1))
