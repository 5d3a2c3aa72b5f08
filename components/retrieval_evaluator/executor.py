"""Scores the latest retrieval model and the blessed one on a span neither has seen, over the span's whole
catalog, and blesses the latest when its Recall@10 is good enough (the ranking side's Evaluator, for
generative retrieval: TFMA scores examples one by one and has no full-catalog top-k).

Both models are given the span's catalog (its new items included), as the two-stage model will serve them
(components/recommender_pusher). The ModelBlessing carries the properties TFX's Evaluator writes
(blessed, current_model_id, baseline_model_id), so LatestBlessedModelStrategy and the Pusher read it as
theirs. `evaluation/retrieval_metrics.json` holds both models' figures and the decision.
"""

import json
import os
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.evaluator import constants
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from formats.artifacts import MODEL_KIND, RETRIEVAL, SEMANTIC_IDS
from formats import interaction_features as fields
from formats.artifacts import RETRIEVAL_METRICS_FILE as METRICS_FILE
from models.ranking import model as ranking
from models.recommend import two_stage
from models.retrieval import data, evaluation, serving, trainer
from formats import served_models

SERVED_SPEC = {**data.EVALUATION_SPEC, **{name: fields.MODEL_SPEC[name]
                                          for name in (fields.HISTORY_LIKED, fields.HISTORY_AGE_DAYS)}}

EXAMPLES, MODEL, BASELINE_MODEL = "examples", "model", "baseline_model"
# The served two-stage model's base directory: its recommend (retrieval, then ranking) and its retrieve alone
# are scored on the span's liked interactions too, as users meet them.
RECOMMENDER_BASE = "recommender_base_directory"
SERVED_SLICE = "liked"
# Requests sent to the served model, one per liked interaction (the first of the evaluated ones): a check
# that it answers as users meet it, with its figures (standard error about 0.02 on Recall@10).
SERVED_REQUESTS = 200
BLESSING, EVALUATION = "blessing", "evaluation"
SPLIT, MIN_RECALL, MAX_REGRESSION, MIN_EXAMPLES = "split", "min_recall", "max_recall_regression", "min_examples"
RECALL = "recall@10"


def decide(candidate: Dict[str, Any], baseline: Dict[str, Any], min_recall: float, max_regression: float,
           min_examples: int) -> List[str]:
  """Why the candidate is not blessed (an empty list: blessed)."""
  overall = candidate.get(evaluation.OVERALL, {})
  if overall.get("examples", 0) < min_examples:
    return [f"{overall.get('examples', 0)} interactions, fewer than {min_examples}"]
  reasons = []
  if overall[RECALL] < min_recall:
    reasons.append(f"{RECALL} {overall[RECALL]:.4f} below {min_recall}")
  if baseline and overall[RECALL] < baseline[evaluation.OVERALL][RECALL] - max_regression:
    reasons.append(f"{RECALL} {overall[RECALL]:.4f} more than {max_regression} below the blessed model's "
                   f"{baseline[evaluation.OVERALL][RECALL]:.4f}")
  return reasons


def served_two_stage(files: List[str], base_directory: str, keep: Optional[np.ndarray] = None) -> Dict[str, Any]:
  """Recall/NDCG@5/10 on the first SERVED_REQUESTS liked interactions of `files` (those `keep` marks) of the
  newest two-stage version under base_directory: `recommend` (retrieval of 100, then the ranker) and
  `retrieve` alone; {} without one."""
  found = served_models.versions_on_disk(base_directory) if base_directory else {}
  if not found or not files:
    return {}
  signatures = tf.saved_model.load(found[max(found)]).signatures
  k = max(evaluation.CUTOFFS)
  top = {two_stage.RECOMMEND: [], serving.RETRIEVE: []}
  targets = []
  for batch in ranking.dataset(files, 256, features=SERVED_SPEC, keep=keep):
    if len(targets) == SERVED_REQUESTS:
      break
    for row in np.flatnonzero(batch[fields.LABEL].numpy() == 1)[:SERVED_REQUESTS - len(targets)]:
      history, liked, ages = (tf.constant(fields.ragged(batch[name])[row].numpy())
                              for name in (fields.HISTORY, fields.HISTORY_LIKED, fields.HISTORY_AGE_DAYS))
      user = batch[fields.USER_ID][row]
      answers = {
          two_stage.RECOMMEND: signatures[two_stage.RECOMMEND](
              history=history, history_liked=liked, history_age_days=ages, user_id=user,
              k=tf.constant(k, tf.int64))[two_stage.ITEMS],
          serving.RETRIEVE: signatures[serving.RETRIEVE](history=history, user_id=user,
                                                         k=tf.constant(k, tf.int64))[serving.ITEMS]}
      for name, items in answers.items():
        top[name].append(np.pad(items.numpy(), (0, k - len(items)), constant_values=-1))
      targets.append(int(batch[fields.ITEM_ID][row]))
  if not targets:
    return {"version": max(found), "examples": 0}
  everything = {evaluation.OVERALL: np.ones(len(targets), bool)}
  return {"version": max(found), **{
      name: evaluation.sliced_metrics(np.stack(rows), np.array(targets), everything)[evaluation.OVERALL]
      for name, rows in top.items()}}


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES])
    split = exec_properties[SPLIT]
    files = ([io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))]
             if split in artifact_utils.decode_split_names(examples.split_names) else [])
    sids = artifact_utils.get_single_instance(input_dict[SEMANTIC_IDS])
    catalog = trainer.load_catalog({"semantic_ids_uri": sids.uri,
                                    "codebook_size": sids.get_int_custom_property("codebook_size")})
    model = artifact_utils.get_single_instance(input_dict[MODEL])
    baseline = input_dict.get(BASELINE_MODEL) or []

    retrievers = {artifact.uri: serving.load(path_utils.serving_model_path(artifact.uri), catalog)
                  for artifact in [model, *baseline]}
    # Both models and the served answers on the same interactions: the candidate's sample.
    keep = trainer.evaluation_sample(retrievers[model.uri], files) if files else None

    def score(artifact: types.Artifact) -> Dict[str, Any]:
      retriever = retrievers[artifact.uri]
      return trainer.evaluate(retriever, files, retriever.beam_width, keep) if files else {}

    candidate = score(model)
    baseline_metrics = score(baseline[0]) if baseline else {}
    reasons = decide(candidate, baseline_metrics, exec_properties[MIN_RECALL], exec_properties[MAX_REGRESSION],
                     exec_properties[MIN_EXAMPLES])
    report = {"candidate": candidate, "baseline": baseline_metrics, "blessed": not reasons, "reasons": reasons,
              "model": model.uri, "baseline_model": baseline[0].uri if baseline else None,
              "served": served_two_stage(files, exec_properties.get(RECOMMENDER_BASE) or "", keep)}
    output = artifact_utils.get_single_instance(output_dict[EVALUATION])
    io_utils.write_string_file(os.path.join(output.uri, METRICS_FILE), json.dumps(report, indent=1))

    blessing = artifact_utils.get_single_instance(output_dict[BLESSING])
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_string_custom_property(MODEL_KIND, RETRIEVAL)
    if baseline:
      blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline[0].uri)
      blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline[0].id)
    name = constants.NOT_BLESSED_FILE_NAME if reasons else constants.BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), "")
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                     constants.NOT_BLESSED_VALUE if reasons else constants.BLESSED_VALUE)
