"""Executor of RQVAETrainer: trains the RQ-VAE on item embeddings and publishes it frozen."""

import dataclasses
import datetime
import json
import os
import time
from typing import Any, Dict, List

import numpy as np
from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from formats import item_corpus, item_embeddings, rqvae_model, spans
from formats.errors import InputDataError
from formats.artifacts import VERSION
from models.rqvae import model as rqvae
from models.rqvae import saved_model

HISTORY_FILE = "training_history.json"
# String custom property of the model: the uri of the model it started from ("": trained from scratch).
WARM_STARTED_FROM = "warm_started_from"


def config_from(overrides_json: str, input_dim: int) -> rqvae.RQVAEConfig:
  overrides = json.loads(overrides_json or "{}")
  unknown = set(overrides) - {f.name for f in dataclasses.fields(rqvae.RQVAEConfig)}
  if unknown:
    raise ValueError(f"unknown RQ-VAE settings: {', '.join(sorted(unknown))}")
  return rqvae.RQVAEConfig(**{**overrides, "input_dim": input_dim})


def items_seen_before(items: types.Artifact, date: str) -> np.ndarray:
  """Ids of items first rated before an ISO date (never-rated items are not 'seen')."""
  cutoff = datetime.datetime.fromisoformat(date).replace(tzinfo=datetime.timezone.utc).timestamp()
  corpus = item_corpus.read_features(items, {"item_id": tf.int64, "first_seen": tf.int64})
  seen = (corpus["first_seen"] >= 0) & (corpus["first_seen"] < cutoff)
  return corpus["item_id"][seen]


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    spans.inherit_span(input_dict, output_dict)
    embeddings_artifact = artifact_utils.get_single_instance(input_dict["embeddings"])
    ids, vectors = item_embeddings.load(embeddings_artifact)
    cutoff = exec_properties.get("train_items_first_seen_before") or ""
    if cutoff:
      keep = np.isin(ids, items_seen_before(artifact_utils.get_single_instance(input_dict["items"]),
                                            cutoff))
      ids, vectors = ids[keep], vectors[keep]
    if not len(ids):
      raise InputDataError(f"RQVAETrainer: no item embeddings to train on (cut-off {cutoff or 'none'})")
    config = config_from(exec_properties.get("config") or "{}", vectors.shape[1])
    try:
      rqvae.check_embeddings(vectors, config)
    except ValueError as e:
      raise InputDataError(f"RQVAETrainer: {e}") from e

    model = rqvae.RQVAE(config)
    base = input_dict.get("base_model") or []
    base_uri = base[0].uri if base else ""
    if base_uri:
      try:
        saved_model.restore(model, path_utils.serving_model_path(base_uri))
      except ValueError as e:
        raise InputDataError(f"RQVAETrainer cannot start from the previous refresh's model: {e}. Train this "
                             f"refresh from scratch (rqvae_warm_start false in --config)") from e
    start = time.perf_counter()
    history = rqvae.train(model, vectors, log=logging.info, warm_start=bool(base_uri))
    training_seconds = time.perf_counter() - start
    output = artifact_utils.get_single_instance(output_dict["model"])
    saved_model.export(model, path_utils.serving_model_path(output.uri))
    with tf.io.gfile.GFile(os.path.join(output.uri, HISTORY_FILE), "w") as f:
      json.dump(history, f)
    rqvae_model.write_train_items(output.uri, ids)
    final = history[-1]
    output.set_string_custom_property(VERSION, exec_properties.get("version") or "v1")
    output.set_string_custom_property(WARM_STARTED_FROM, base_uri)
    output.set_int_custom_property("train_items", len(ids))
    output.set_string_custom_property("train_items_first_seen_before", cutoff)
    output.set_float_custom_property("training_seconds", training_seconds)
    output.set_float_custom_property("loss", final["total"])
    output.set_float_custom_property("reconstruction_loss", final["reconstruction"])
    output.set_string_custom_property("utilisation", json.dumps([round(u, 4) for u in final["utilisation"]]))
    output.set_string_custom_property("perplexity", json.dumps([round(p, 1) for p in final["perplexity"]]))
    output.set_string_custom_property("config", json.dumps(config.__dict__))
