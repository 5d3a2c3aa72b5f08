"""TFMA Evaluator results as plain figures: AUC and example count per slice for the candidate model."""

from typing import Dict, Optional

import tensorflow_model_analysis as tfma

CANDIDATE = "candidate"


def _slice_name(slice_key) -> str:
  """() -> 'overall'; (('item_segment', b'cold_start'),) -> 'cold_start'."""
  if not slice_key:
    return "overall"
  value = slice_key[0][1]
  return value.decode() if isinstance(value, bytes) else str(value)


def sliced_auc(evaluation_uri: str, model_name: str = CANDIDATE) -> Dict[str, Dict[str, Optional[float]]]:
  """{slice: {auc, examples}} from an Evaluator's `evaluation` artifact (AUC None where TFMA has none)."""
  result = {}
  for metrics in tfma.load_metrics(evaluation_uri):
    name = _slice_name(tfma.slicer.deserialize_slice_key(metrics.slice_key))
    figures = {"auc": None, "examples": 0}
    for key_and_value in metrics.metric_keys_and_values:
      key, value = key_and_value.key, key_and_value.value
      # A run without a baseline has one model, which TFMA leaves unnamed.
      if key.model_name not in (model_name, "") or key.HasField("sub_key") or key.is_diff:
        continue
      if key.name == "auc":
        figures["auc"] = value.double_value.value
      elif key.name == "example_count":
        figures["examples"] = int(value.double_value.value)
    result[name] = figures
  return result
