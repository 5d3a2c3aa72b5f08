"""Beam executor of SemanticIdAssigner: every item's Semantic ID from the frozen RQ-VAE.

Workers load the SavedModel once (DoFn.setup) and encode batches; items are then grouped by their
codes to give colliding items distinct suffixes. With previous Semantic IDs (daily runs) only the
items absent from them are encoded: a join by item id separates old from new items, and the join by
codes puts new items after the old ones that share their codes, all in Beam, so the launcher never
holds the corpus. The pipeline's shapes (components/beam_io.py) are chosen to run on every Beam
runner, Dask's included: one sink for the SIDs and the collision counts, no tagged outputs.
"""

import heapq
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
from formats.artifacts import RQVAE_VERSION, VERSION
from models.rqvae import model as rqvae
from models.rqvae import saved_model
from components import beam_io

STATS_FILE = ".collision_stats.json"
# String custom property of the Semantic IDs: the `version` of the RQ-VAE that assigned them, so that a
# query by property (kubeflow/runner.py) tells v1 from v0.
_MAX_NAMED = 10
_SUMMED_STATS = ("items", "new_items", "distinct_codes", "items_sharing_codes",
                 "items_with_nonzero_suffix", "orphans")


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


def _merged(stats: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
  """The collision counts of several groups of shared codes and orphans as one; of none, zeros.
  Associative, so a Beam combine."""
  stats = list(stats)
  merged = {key: sum(s[key] for s in stats) for key in _SUMMED_STATS}
  merged["largest_collision"] = max((s["largest_collision"] for s in stats), default=0)
  merged["first_orphans"] = heapq.nsmallest(_MAX_NAMED,
                                            (i for s in stats for i in s["first_orphans"]))
  return merged


def _group_stats(old: int, new: int) -> Dict[str, Any]:
  """The collision counts of one group of `old` and `new` items that share their codes."""
  size = old + new
  return {**_merged([]), "items": size, "new_items": new, "distinct_codes": 1,
          "items_sharing_codes": size if size > 1 else 0, "items_with_nonzero_suffix": size - 1,
          "largest_collision": size}


def _orphan_stats(item_id: int) -> Dict[str, Any]:
  return {**_merged([]), "orphans": 1, "first_orphans": [item_id]}


def _split_by_id(item_id: int, grouped: Dict[str, Iterable[Any]]) -> Tuple[str, Any]:
  """An item's embedding and previous SID -> ("new", (id, vector)), ("old", (codes, (suffix,
  record))) or, for an item of the previous SIDs without an embedding, ("stats", it as an orphan)."""
  vectors, previous = list(grouped["embeddings"]), list(grouped["previous"])
  if not vectors:
    return "stats", _orphan_stats(item_id)
  if previous:
    codes, suffix, record = previous[0]
    return "old", (codes, (suffix, record))
  return "new", (item_id, vectors[0])


def _with_suffixes(codes: Tuple[int, ...], grouped: Dict[str, Iterable[Any]]
                   ) -> Iterable[Tuple[str, Any]]:
  """("sid", record) of each item and ("stats", the group's counts): old items keep their record
  byte for byte; new ones take the suffixes after the largest old one, in id order, so that no
  published SID ever changes."""
  old, new = list(grouped["old"]), list(grouped["new"])
  yield from (("sid", record) for _, record in old)
  first = max((suffix for suffix, _ in old), default=-1) + 1
  for item_id, suffix in semantic_ids.disambiguate(new):
    yield "sid", semantic_ids.to_example(item_id, codes, first + suffix)
  yield "stats", _group_stats(len(old), len(new))


def _check_previous(previous: types.Artifact, config: rqvae.RQVAEConfig, export_dir: str) -> None:
  found = [previous.get_int_custom_property(key) for key in ("num_levels", "codebook_size")]
  if found != [config.num_levels, config.codebook_size]:
    raise InputDataError(
        f"SIDs from another RQ-VAE: the previous Semantic IDs at {previous.uri} have {found[0]} levels "
        f"of {found[1]} codes, the frozen RQ-VAE at {export_dir} {config.num_levels} of "
        f"{config.codebook_size}; assign every item again (no previous_semantic_ids)")


def _split(p: beam.Pipeline, vectors: beam.PCollection, previous: Optional[types.Artifact]
           ) -> Dict[str, beam.PCollection]:
  """{"new": items' (id, vector), "old": items' (codes, (suffix, record)), "stats": orphans'
  counts}."""
  if previous is None:
    return {"new": vectors, "old": p | "NoOldItems" >> beam.Create([]),
            "stats": p | "NoOrphans" >> beam.Create([])}
  return ({"embeddings": vectors,
           "previous": (p
                        | "ReadPrevious" >> beam_io.read_tfrecords(
                            semantic_ids.files_pattern(previous.uri))
                        | "KeyPrevious" >> beam.Map(_keyed_by_id))}
          | "GroupById" >> beam.CoGroupByKey()
          | "SplitById" >> beam.MapTuple(_split_by_id)
          | "ByKind" >> beam_io.ByTag("new", "old", "stats"))


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
    # Only the items without a previous SID are encoded: about this many.
    expected_new = embeddings.get_int_custom_property("count") - (
        previous.get_int_custom_property("items") if previous else 0)

    with self._make_beam_pipeline() as p:
      vectors = (p
                 | "Read" >> beam_io.read_tfrecords(
                     item_embeddings.files_pattern(embeddings.uri))
                 | "Parse" >> beam.Map(item_embeddings.from_example))
      split = _split(p, vectors, previous)
      encoded = (split["new"]
                 | "Batch" >> beam_io.Batches(batch_size, expected_new)
                 | "Encode" >> beam.ParDo(_Encode(export_dir)))
      assigned = ({"old": split["old"], "new": encoded}
                  | "GroupByCodes" >> beam.CoGroupByKey()
                  | "Suffixes" >> beam.FlatMapTuple(_with_suffixes)
                  | "SidsAndStats" >> beam_io.ByTag("sid", "stats"))
      stats = ((split["stats"], assigned["stats"])
               | "AllStats" >> beam.Flatten()
               | "MergeStats" >> beam_io.MergedJson(_merged))
      _ = ({"sids": assigned["sid"], "stats": stats}
           | "Write" >> beam_io.WriteFiles({
               "sids": beam_io.TFRecordFiles(
                   os.path.join(output.uri, semantic_ids.FILE_PREFIX), semantic_ids.FILE_SUFFIX),
               "stats": beam_io.TextFile(stats_path)}))

    stats = beam_io.read_merged_json(stats_path, _merged)
    tf.io.gfile.remove(stats_path)  # It lies in the output, which holds only the Semantic IDs.
    orphans, first_orphans = stats.pop("orphans"), stats.pop("first_orphans")
    if orphans:
      raise InputDataError(f"{orphans} items of the previous Semantic IDs at {previous.uri} have no "
                           f"embedding in {embeddings.uri}, the first: "
                           f"{', '.join(str(i) for i in first_orphans)}")
    if stats["items"] != embeddings.get_int_custom_property("count"):
      raise InputDataError(f"assigned {stats['items']} Semantic IDs for "
                           f"{embeddings.get_int_custom_property('count')} item embeddings")
    if model.has_custom_property(VERSION):
      output.set_string_custom_property(RQVAE_VERSION, model.get_string_custom_property(VERSION))
    output.set_int_custom_property("num_levels", config.num_levels)
    output.set_int_custom_property("codebook_size", config.codebook_size)
    for key, value in stats.items():
      output.set_int_custom_property(key, value)
    output.set_float_custom_property("unique_ratio_before_suffix",
                                     stats["distinct_codes"] / max(stats["items"], 1))
