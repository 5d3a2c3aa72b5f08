"""Assembles the two-stage SavedModel (models/recommend/two_stage.py) from the versions being served now and
the latest catalog, and pushes it as a new version: no training, so the items given a Semantic ID in this
run are retrievable from this run on.

The served versions are the newest under the ranking and retrieval Pushers' base directories (this run's
push if it was blessed, else the one before). Nothing is pushed while either has none. The version is
written under a temporary name and renamed, so a polling server never loads half of it.
"""

import os
import time
from typing import Any, Dict, List

import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import predict_pb2
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from formats.artifacts import EMBEDDINGS, SEMANTIC_IDS
from formats import item_embeddings
from models.recommend import two_stage
from models.retrieval import trainer
from formats import served_models

RANKING_BASE, RETRIEVAL_BASE, BASE = "ranking_base_directory", "retrieval_base_directory", "base_directory"
NUM_CANDIDATES = "num_candidates"
PUSHED_MODEL = "pushed_model"
WARMUP_HISTORY = 5  # catalog items in the warmup request's history


def _newest(base_directory: str):
  found = served_models.versions_on_disk(base_directory)
  return (max(found), found[max(found)]) if found else (None, None)


def warmup_requests(item_ids) -> List[predict_pb2.PredictRequest]:
  """One recommend request on catalog items, which TF Serving replays before the version takes traffic."""
  request = predict_pb2.PredictRequest()
  request.model_spec.signature_name = two_stage.RECOMMEND
  history = [int(i) for i in item_ids[:WARMUP_HISTORY]]
  for key, value in (("history", history), (two_stage.HISTORY_LIKED, [1] * len(history)),
                     (two_stage.HISTORY_AGE_DAYS, [0] * len(history))):
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value, tf.int64))
  request.inputs["user_id"].CopyFrom(tf.make_tensor_proto(0, tf.int64))
  request.inputs["k"].CopyFrom(tf.make_tensor_proto(10, tf.int64))
  return [request]


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    pushed = artifact_utils.get_single_instance(output_dict[PUSHED_MODEL])
    ranking_version, ranking_dir = _newest(exec_properties[RANKING_BASE])
    retrieval_version, retrieval_dir = _newest(exec_properties[RETRIEVAL_BASE])
    if ranking_dir is None or retrieval_dir is None:
      logging.warning("Nothing pushed: no %s model is served yet.", "ranking" if ranking_dir is None else "retrieval")
      pushed.set_int_custom_property("pushed", 0)
      return
    sids = artifact_utils.get_single_instance(input_dict[SEMANTIC_IDS])
    catalog = trainer.load_catalog({"semantic_ids_uri": sids.uri,
                                    "codebook_size": sids.get_int_custom_property("codebook_size")})
    content_ids = content = None
    if input_dict.get(EMBEDDINGS):
      content_ids, content = item_embeddings.load(artifact_utils.get_single_instance(input_dict[EMBEDDINGS]))
    model = two_stage.TwoStage(retrieval_dir, ranking_dir, catalog, content_ids, content,
                               exec_properties[NUM_CANDIDATES])
    base = exec_properties[BASE]
    latest, _ = _newest(base)
    version = max(int(time.time()), (latest or 0) + 1)
    staging, destination = os.path.join(base, f".staging-{version}"), os.path.join(base, str(version))
    two_stage.export(model, staging)
    served_models.write_warmup_requests(staging, warmup_requests(catalog.item_ids))
    os.rename(staging, destination)
    logging.info("Pushed the two-stage model %s (ranking %s, retrieval %s, %d catalog items)", destination,
                 ranking_version, retrieval_version, len(catalog.item_ids))
    for key, value in (("pushed", 1), ("pushed_version", version), ("ranking_version", ranking_version),
                       ("retrieval_version", retrieval_version)):
      pushed.set_int_custom_property(key, value)
    pushed.set_string_custom_property("pushed_destination", destination)
