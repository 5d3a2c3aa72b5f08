"""The SidVocabulary artifact's format: `<uri>/spm_<budget>.model` (serialized SentencePiece models
over Semantic IDs, see models/sid_adaptation/spm.py), `<uri>/vocabulary.json` with the settings, and
`<uri>/item_impressions.tsv` (item id, impressions in the training splits) for every item with a SID:
the popularity the vocabulary was learned from, also what head and long-tail slices are cut by."""

import json
import os
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf
from tfx import types

VOCABULARY_JSON = "vocabulary.json"
IMPRESSIONS_TSV = "item_impressions.tsv"


def model_path(uri: str, budget: int) -> str:
  return os.path.join(uri, f"spm_{budget}.model")


def write(artifact: types.Artifact, models: Dict[int, bytes], settings: Dict[str, Any],
          item_ids: np.ndarray, impressions: np.ndarray) -> None:
  with tf.io.gfile.GFile(os.path.join(artifact.uri, IMPRESSIONS_TSV), "w") as f:
    f.write("".join(f"{i}\t{n}\n" for i, n in zip(item_ids.tolist(), impressions.tolist())))
  for budget, model in models.items():
    with tf.io.gfile.GFile(model_path(artifact.uri, budget), "wb") as f:
      f.write(model)
  with tf.io.gfile.GFile(os.path.join(artifact.uri, VOCABULARY_JSON), "w") as f:
    json.dump(settings, f, indent=1)


def settings(artifact: types.Artifact) -> Dict[str, Any]:
  with tf.io.gfile.GFile(os.path.join(artifact.uri, VOCABULARY_JSON)) as f:
    return json.load(f)


def load_model(artifact: types.Artifact, budget: int) -> bytes:
  path = model_path(artifact.uri, budget)
  if not tf.io.gfile.exists(path):
    raise ValueError(f"no SentencePiece vocabulary for a {budget}-row table in {artifact.uri}; "
                     f"budgets built: {settings(artifact)['table_budgets']}")
  with tf.io.gfile.GFile(path, "rb") as f:
    return f.read()


def load_impressions(artifact: types.Artifact) -> Tuple[np.ndarray, np.ndarray]:
  """(item_ids, impressions in the training splits), in item-id order."""
  table = np.loadtxt(tf.io.gfile.GFile(os.path.join(artifact.uri, IMPRESSIONS_TSV)), np.int64, ndmin=2)
  return table[:, 0], table[:, 1]
