"""RetrievalTrainer's executor on artifacts in a temp dir: from scratch, then a warm-started step that scores
the span with the incoming model before training on it."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.utils import path_utils

import conftest
from components.ranking_trainer import executor
from components.ranking_trainer.component import executor_properties
from components.retrieval_trainer.component import RetrievalTrainer
from formats import artifacts
from models.ranking import trainer as ranking_trainer
from models.retrieval import serving

CODES = [[0, 1], [0, 2], [1, 0], [1, 3], [2, 2], [3, 1], [3, 2]]  # items 1..7; 7 is never rated
CONFIG = {"encoder_layers": 1, "decoder_layers": 1, "heads": 2, "head_dim": 8, "d_model": 16, "mlp_dim": 32,
          "user_buckets": 8, "history_length": 3, "suffix_size": 2, "batch_size": 8, "warmup_epochs": 40,
          "learning_rate": 1e-2, "beam_width": 6, "dropout": 0.0}


def _sequence(user, items, segment="head"):
  """A user's interactions with `items` in order, each with the items before it as history."""
  return [{"user_id": user, "item_id": item, "history": items[:i], "liked": 1, "item_segment": segment,
           "timestamp": i} for i, item in enumerate(items)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  root = tmp_path_factory.mktemp("inputs")
  # Every user walks the items in the order 1, 2, ..., 6 from a different start: the next item is learnable.
  backfill = [row for user in range(1, 9) for row in _sequence(user, [(user + i) % 6 + 1 for i in range(5)])]
  span = _sequence(20, [3, 4, 5]) + _sequence(21, [6, 1], segment="cold_start")
  examples = conftest.examples_artifact(root / "examples", {"backfill": backfill, "span_1": span})
  return {"examples": [examples], "semantic_ids": [conftest.semantic_ids_artifact(root / "sids", CODES, 4)]}


def _properties(train_splits, eval_splits, config=CONFIG):
  """RetrievalTrainer's exec_properties for these splits and settings."""
  return executor_properties(RetrievalTrainer(
      examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
      semantic_ids=tfx.dsl.Channel(type=artifacts.SemanticIds),
      train_splits=train_splits, eval_splits=eval_splits, retrieval_config=config))


def _train(tmp_path, inputs, name, train_splits, eval_splits, base_model=None, config=CONFIG):
  outputs = conftest.trainer_outputs(tmp_path / name)
  input_dict = dict(inputs, base_model=[base_model]) if base_model else inputs
  executor.Executor().Do(input_dict, outputs, _properties(train_splits, eval_splits, config))
  with open(os.path.join(outputs["model_run"][0].uri, ranking_trainer.METRICS_FILE)) as f:
    return outputs["model"][0], json.load(f)


def _retrieve(model, history, k=6, user=0):
  retrieve = tf.saved_model.load(path_utils.serving_model_path(model.uri)).signatures[serving.RETRIEVE]
  return retrieve(history=tf.constant(history, tf.int64), user_id=tf.constant(user, tf.int64),
                  k=tf.constant(k, tf.int64))[serving.ITEMS].numpy().tolist()


def test_a_warm_up_trains_on_the_latest_warmup_examples_only(tmp_path, inputs):
  # The backfill's latest interactions (timestamp 4) are users 1..8's fifth items; of those, the last 4 read
  # (users 5..8): items 4, 5, 6 and 1. Only those are trained items, the others cold.
  model, metrics = _train(tmp_path, inputs, "capped", ["backfill"], [],
                          config={**CONFIG, "warmup_epochs": 1, "warmup_examples": 4})
  assert metrics["train_examples"] == 4 and metrics["span_examples"] == 40
  assert metrics["train_batches"] == 1  # batch_size 8: the 4 examples kept, not 5 batches of the 40
  _, _, trained = serving.read_settings(os.path.join(path_utils.serving_model_path(model.uri), serving.EXTRA))
  assert trained.tolist() == [1, 4, 5, 6] and metrics["cold_items"] == 3


def test_a_span_is_scored_on_a_sample_of_evaluation_examples(tmp_path, inputs):
  _, metrics = _train(tmp_path, inputs, "sampled", ["backfill"], ["span_1"],
                      config={**CONFIG, "warmup_epochs": 1, "evaluation_examples": 3})
  assert metrics["eval"]["overall"]["examples"] == 3 and metrics["eval"]["sampled_from"] == 5


def test_warm_up_then_a_step_scored_before_training(tmp_path, inputs):
  warmup, warmup_metrics = _train(tmp_path, inputs, "warmup", ["backfill"], [])
  assert warmup_metrics["train_examples"] == 40 and warmup_metrics["eval"] == {}
  assert warmup.get_string_custom_property("trained_spans") == "backfill"
  # The pattern is learned: after 2 and 3, item 4 comes first; the history never comes back; item 7, never
  # trained on, is cold and takes the ceil(0.1 x 6) = 1 slot kept for cold items.
  top = _retrieve(warmup, [2, 3])
  assert top[0] == 4 and sorted(top) == [1, 4, 5, 6, 7] and warmup_metrics["cold_items"] == 1
  _, _, trained = serving.read_settings(os.path.join(path_utils.serving_model_path(warmup.uri), serving.EXTRA))
  assert trained.tolist() == [1, 2, 3, 4, 5, 6]

  step, metrics = _train(tmp_path, inputs, "step", ["span_1"], ["span_1"], base_model=warmup)
  assert step.get_int_custom_property("span") == 1 and metrics["train_examples"] == 5
  # The step's trained items: the warm-up's and its span's (3, 4, 5, 6, 1 alone would miss 2).
  _, _, trained = serving.read_settings(os.path.join(path_utils.serving_model_path(step.uri), serving.EXTRA))
  assert trained.tolist() == [1, 2, 3, 4, 5, 6]
  _assert_scored_by(metrics, warmup)
  assert metrics["eval"]["new_items"]["examples"] == 2


def _assert_scored_by(metrics, model):
  """The step scored span_1 before training with `model`'s weights: the same top 10 as `model` serves."""
  span = [(20, [], 3), (20, [3], 4), (20, [3, 4], 5), (21, [], 6), (21, [6], 1)]
  hits = [(_retrieve(model, history, 10, user) + [item]).index(item) for user, history, item in span]
  assert metrics["eval"]["overall"]["examples"] == 5
  assert metrics["eval"]["overall"]["recall@5"] == pytest.approx(np.mean([h < 5 for h in hits]))
  assert metrics["eval"]["overall"]["ndcg@10"] == pytest.approx(
      np.mean([1 / np.log2(h + 2) if h < 10 else 0 for h in hits]))


def test_two_worker_training_restores_into_the_single_worker_step(tmp_path, inputs):
  distributed, run = conftest.train_on_workers(tmp_path / "two", inputs, _properties(["backfill"], []), 2)
  with open(os.path.join(run.uri, ranking_trainer.METRICS_FILE)) as f:
    assert json.load(f)["workers"] == 2
  _, metrics = _train(tmp_path, inputs, "step", ["span_1"], ["span_1"], base_model=distributed)
  assert metrics["workers"] == 1
  _assert_scored_by(metrics, distributed)


def test_a_remap_refresh_over_renumbered_codes_serves_what_the_previous_model_served(tmp_path, inputs):
  # The refresh's SIDs renumber the previous ones (a permutation of the 4 codes at each level): fitted and not
  # trained (learning rate 0), the remapped model retrieves exactly what the previous model retrieves.
  config = {**CONFIG, "prefix_rows": 0, "prefix_logits": False}  # unused prefixes would score other rows
  previous, _ = _train(tmp_path, inputs, "previous", ["backfill"], [], config=config)
  renumber = ([2, 0, 3, 1], [3, 2, 0, 1])
  refreshed = conftest.semantic_ids_artifact(tmp_path / "refreshed",
                                             [[renumber[0][a], renumber[1][b]] for a, b in CODES], 4)
  refresh_inputs = dict(inputs, semantic_ids=[refreshed], previous_semantic_ids=inputs["semantic_ids"])
  model, metrics = _train(tmp_path, refresh_inputs, "remapped", ["backfill"], [], base_model=previous,
                          config={**config, "step_learning_rate": 0.0, "remap_examples": 8})
  assert metrics["remapped"] == {"items": 7, "tokens": 8, "prefix_rows": 0}
  assert metrics["train_examples"] == 8 and metrics["epochs"] == 1
  for user, history in ((0, [2, 3]), (3, [5]), (5, [])):
    assert _retrieve(model, history, user=user) == _retrieve(previous, history, user=user)


def test_a_remap_refresh_refuses_a_previous_model_of_another_architecture(tmp_path, inputs):
  previous, _ = _train(tmp_path, inputs, "previous", ["backfill"], [], config={**CONFIG, "warmup_epochs": 1})
  refresh_inputs = dict(inputs, previous_semantic_ids=inputs["semantic_ids"])
  with pytest.raises(ValueError, match=r"differ in \{'d_model': \(16, 8\)\}; train the refresh's model from scratch "
                                       r"\(refresh_warm_start scratch\)"):
    _train(tmp_path, refresh_inputs, "refused", ["backfill"], [], base_model=previous, config={**CONFIG, "d_model": 8})
