"""Beam executor of ContentEmbedder: exports the content encoder, then embeds every item with it.

The encoder is exported once as a SavedModel (string -> 384 floats) into the `encoder` artifact and
every Beam worker loads that same file once; the serving model can later embed unknown items' text
with the identical graph. With previous embeddings (daily runs) only the items absent from them are
embedded, and their records are copied unchanged; without `export_encoder` the encoder goes to the
execution's temp folder instead, and only when there is something to embed. A join by item id
separates old from new items and a second one checks the written records (item_embeddings'
checks, as counts), all in Beam, so that the launcher never holds the corpus. The pipeline's shapes
(components/beam_io.py) are chosen to run on every Beam runner, Dask's included.
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

from formats import item_corpus, item_embeddings, spans
from formats.errors import InputDataError
from formats.artifacts import EXPORTED
from models.content_encoder import encoder as content_encoder
from components import beam_io

# The number of new items is unknown until the pipeline has run: they are grouped under this many
# keys, so that as many workers embed. A group is embedded in batches of similar token counts
# (content_encoder.load_saved_model), which pad less in larger groups: batches of 32 of the 9,742
# MovieLens texts hold 1.04 times their tokens from 8 groups, 1.25 times from 64.
_GROUP_KEYS = 8
# Texts a worker sorts and embeds at once, at most.
_GROUP_SIZE = 4096
# Int custom property of the `encoder` output: 1 when it holds the encoder, 0 when it is empty.


class _Embed(beam.DoFn):
  """Embeds groups of (item_id, text) with the exported encoder, loaded once per worker."""

  def __init__(self, saved_model_dir: str, batch_size: int):
    self._saved_model_dir, self._batch_size = saved_model_dir, batch_size
    self._embed = None

  def setup(self):
    self._embed = content_encoder.load_saved_model(self._saved_model_dir)

  def process(self, group: List[Tuple[int, str]]) -> Iterable[Tuple[int, np.ndarray]]:
    ids, texts = zip(*group)
    yield from zip(ids, self._embed(texts, self._batch_size))


def _id_and_text(record: bytes) -> Tuple[int, str]:
  features = tf.train.Example.FromString(record).features.feature
  return (features["item_id"].int64_list.value[0],
          features["content_text"].bytes_list.value[0].decode("utf-8"))


def _keyed_previous(record: bytes) -> Tuple[int, bytes]:
  return item_embeddings.from_example(record)[0], record


def _split_by_id(item_id: int, grouped: Dict[str, Iterable[Any]]) -> Iterable[Tuple[str, Any]]:
  """An item's corpus texts and previous records -> ("old", each record), so that a published vector
  never changes, or else ("new", (id, each text)) to embed; and ("expected", (id, whether new)):
  every item of either must come out with one vector, even one that has left the corpus."""
  previous = list(grouped["previous"])
  yield "expected", (item_id, not previous)
  if previous:
    yield from (("old", record) for record in previous)
  else:
    yield from (("new", (item_id, text)) for text in grouped["items"])


def _split(p: beam.Pipeline, items: types.Artifact, previous: Optional[types.Artifact]
           ) -> Dict[str, beam.PCollection]:
  """{"old": previous records to copy, "new": (id, text) to embed, "expected": (id, is new)}."""
  if previous is None:
    previous_records = p | "NoPrevious" >> beam.Create([])
  else:
    previous_records = (p
                        | "ReadPrevious" >> beam_io.read_tfrecords(
                            item_embeddings.files_pattern(previous.uri))
                        | "KeyPrevious" >> beam.Map(_keyed_previous))
  return ({"items": (p
                     | "ReadItems" >> beam_io.read_tfrecords(item_corpus.files_pattern(items))
                     | "IdAndText" >> beam.Map(_id_and_text)),
           "previous": previous_records}
          | "GroupById" >> beam.CoGroupByKey()
          | "SplitById" >> beam.FlatMapTuple(_split_by_id)
          | "ByKind" >> beam_io.ByTag("old", "new", "expected"))


def _record_problem(record: bytes) -> Tuple[int, str]:
  item_id, vector = item_embeddings.from_example(record)
  return item_id, item_embeddings.vector_problem(vector, content_encoder.EMBEDDING_DIM)


def _item_stats(item_id: int, grouped: Dict[str, Iterable[Any]]) -> Dict[str, Any]:
  """The counts of one item id from its written records' problems and whether it is new."""
  written, expected = list(grouped["written"]), list(grouped["expected"])
  problems = item_embeddings.id_problems(written, in_corpus=bool(expected))
  return {"count": len(written), "new_items": int(any(expected)),
          "problems": {why: [1, [item_id]] for why in problems}}


def _merged(stats: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
  """Several items' counts as one, each problem with its number of items and its first ids, so that
  the launcher reads one line however large the corpus; of none, zeros. Associative: a Beam
  combine (Top and Sample emit in finish_bundle, which the DaskRunner loses)."""
  stats = list(stats)
  problems: Dict[str, List[Any]] = {}
  for s in stats:
    for why, (count, first_ids) in s["problems"].items():
      total, ids = problems.get(why, (0, []))
      problems[why] = [total + count, heapq.nsmallest(item_embeddings.MAX_NAMED, ids + first_ids)]
  return {"count": sum(s["count"] for s in stats), "new_items": sum(s["new_items"] for s in stats),
          "problems": problems}


def _stats(records: beam.PCollection, expected: beam.PCollection) -> beam.PCollection:
  """The checks of item_embeddings.check on the written records, as one JSON line of counts."""
  return ({"written": records | "Problems" >> beam.Map(_record_problem), "expected": expected}
          | "GroupWrittenById" >> beam.CoGroupByKey()
          | "ItemStats" >> beam.MapTuple(_item_stats)
          | "MergeStats" >> beam_io.MergedJson(_merged))


def _check_previous(previous: types.Artifact) -> None:
  """The previous vectors must fit this encoder."""
  dim = previous.get_int_custom_property("dim")
  if dim != content_encoder.EMBEDDING_DIM:
    raise InputDataError(
        f"the previous item embeddings at {previous.uri} are {dim}-d, {content_encoder.MODEL_NAME} "
        f"gives {content_encoder.EMBEDDING_DIM}-d: embed every item again (no previous_embeddings)")


class Executor(base_beam_executor.BaseBeamExecutor):

  def _count_new(self, items: types.Artifact, previous: Optional[types.Artifact]) -> int:
    """How many items the previous embeddings lack, by a pipeline of their own."""
    path = os.path.join(self._get_tmp_dir(), "new_items")
    with self._make_beam_pipeline() as p:
      _ = ({"count": (_split(p, items, previous)["new"]
                      | "Count" >> beam.CombineGlobally(beam.combiners.CountCombineFn())
                      .without_defaults()
                      | "CountText" >> beam.Map(str))}
           | "Write" >> beam_io.WriteFiles({"count": beam_io.TextFile(path)}))
    with tf.io.gfile.GFile(path) as f:
      return int(f.read() or 0)

  def _encoder_dir(self, frozen: List[types.Artifact], encoder: types.Artifact, export: bool,
                   items: types.Artifact, previous: Optional[types.Artifact]) -> Optional[str]:
    """The SavedModel that embeds the new items; None when it would embed none."""
    if frozen:  # The SID refresh's encoder: loading it is faster than building MiniLM again.
      return path_utils.serving_model_path(artifact_utils.get_single_uri(frozen))
    if export:
      return content_encoder.export_saved_model(path_utils.serving_model_path(encoder.uri))
    # Built only when needed, which a count of the new items tells before the pipeline that embeds.
    if not self._count_new(items, previous):
      return None
    # The launcher removes its temp folder after the run: 89 MB nobody reads again.
    return content_encoder.export_saved_model(os.path.join(self._get_tmp_dir(), "encoder"))

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    spans.inherit_span(input_dict, output_dict)
    items = artifact_utils.get_single_instance(input_dict["items"])
    previous = (artifact_utils.get_single_instance(input_dict["previous_embeddings"])
                if input_dict.get("previous_embeddings") else None)
    encoder = artifact_utils.get_single_instance(output_dict["encoder"])
    output = artifact_utils.get_single_instance(output_dict["embeddings"])
    if previous is not None:
      _check_previous(previous)
    export = bool(exec_properties.get("export_encoder", 1))
    saved_model_dir = self._encoder_dir(input_dict.get("frozen_encoder"), encoder, export, items,
                                        previous)
    encoder.set_int_custom_property(EXPORTED, int(export))
    batch_size = int(exec_properties.get("batch_size") or content_encoder.DEFAULT_BATCH_SIZE)
    stats_path = os.path.join(self._get_tmp_dir(), "stats.json")

    with self._make_beam_pipeline() as p:
      split = _split(p, items, previous)
      parts = [split["old"]]
      if saved_model_dir:
        parts.append(
            split["new"]
            # Batches makes count / size keys.
            | "Group" >> beam_io.Batches(_GROUP_SIZE, count=_GROUP_SIZE * _GROUP_KEYS)
            | "Embed" >> beam.ParDo(_Embed(saved_model_dir, batch_size))
            | "ToExample" >> beam.MapTuple(item_embeddings.to_example))
      records = tuple(parts) | "Merge" >> beam.Flatten()
      files = beam_io.TFRecordFiles(os.path.join(output.uri, item_embeddings.FILE_PREFIX),
                                    item_embeddings.FILE_SUFFIX)
      _ = ({"embeddings": records, "stats": _stats(records, split["expected"])}
           | "Write" >> beam_io.WriteFiles({"embeddings": files,
                                            "stats": beam_io.TextFile(stats_path)}))

    # The encoder never yields NaN or zero vectors for valid weights; checking anyway keeps a broken
    # encoder from publishing garbage that every later stage would inherit.
    stats = beam_io.read_merged_json(stats_path, _merged)
    item_embeddings.raise_problems(stats["problems"], source="ContentEmbedder output")
    item_embeddings.set_properties(output, dim=content_encoder.EMBEDDING_DIM, count=stats["count"],
                                   source=content_encoder.MODEL_NAME)
    output.set_int_custom_property("new_items", stats["new_items"])
