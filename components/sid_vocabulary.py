"""The SidVocabulary artifact's format: `<uri>/spm_<budget>.model` (serialized SentencePiece models
over Semantic IDs, see models/sid_adaptation/spm.py) and `<uri>/vocabulary.json` with the settings."""

import json
import os
from typing import Any, Dict

import tensorflow as tf
from tfx import types

VOCABULARY_JSON = "vocabulary.json"


def model_path(uri: str, budget: int) -> str:
  return os.path.join(uri, f"spm_{budget}.model")


def write(artifact: types.Artifact, models: Dict[int, bytes], settings: Dict[str, Any]) -> None:
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
