import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

import conftest
from formats import artifacts, feature_state, sid_vocabulary
from components.ranking_trainer import executor
from components.ranking_trainer.component import RankingTrainer, executor_properties
from models.ranking import evaluation, trainer
from models.sid_adaptation import spm

L, K = 2, 4
CODES = [[0, 1], [0, 1], [0, 2], [3, 3], [1, 0], [2, 2]]
CONFIG = {"representation": "spm", "table_rows": 12, "embedding_dim": 4, "hidden_units": [8],
          "warmup_epochs": 2}


def _interactions(items, liked):
  return [{"item_id": i, "current_item": 0, "history": [1, 2][:i % 3], "history_liked": [1, 0][:i % 3],
           "history_age_days": [4, 0][:i % 3], "liked": like, "item_segment": "head", "timestamp": second}
          for second, (i, like) in enumerate(zip(items, liked))]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  root = tmp_path_factory.mktemp("inputs")
  vocabulary = artifacts.SidVocabulary()
  vocabulary.uri = str(root / "vocabulary")
  os.makedirs(vocabulary.uri)
  weights = np.array([5, 4, 2, 1, 0, 0])
  sid_vocabulary.write(vocabulary, {12: spm.train(np.array(CODES), weights, L, K, 12)},
                       {"num_levels": L, "codebook_size": K, "table_budgets": [12]}, np.arange(1, 7), weights)
  examples = conftest.examples_artifact(root / "examples", {
      "backfill": _interactions([1, 2, 3, 4, 5, 6] * 4, [1, 1, 1, 0, 0, 0] * 4),
      "span_1": _interactions([1, 4, 2, 5], [1, 0, 1, 0]),
      "span_2": _interactions([3, 6, 1, 99], [1, 0, 1, 0])})  # item 99 is not in the catalog
  vectors = np.eye(6, 4, dtype=np.float32)
  return {"examples": [examples],
          "semantic_ids": [conftest.semantic_ids_artifact(root / "sids", CODES, K)],
          "vocabulary": [vocabulary],
          "embeddings": [conftest.embeddings_artifact(root / "embeddings", vectors)],
          "sid_encoder": [conftest.rqvae_artifact(root / "rqvae", vectors, L, K)[0]],
          "feature_state": [_empty_state(root / "state")]}


def _empty_state(path):
  """A FeatureState without users or items: the serving model's counters are all zero."""
  state = artifacts.FeatureState()
  state.uri = str(path)
  os.makedirs(state.uri)
  feature_state.set_properties(state, span=2, span_period="day", previous_state_uri="", half_life_days=30.0)
  return state


def _properties(train_splits, eval_splits, config=CONFIG):
  """RankingTrainer's exec_properties for these splits and settings."""
  return executor_properties(RankingTrainer(
      examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
      semantic_ids=tfx.dsl.Channel(type=artifacts.SemanticIds),
      vocabulary=tfx.dsl.Channel(type=artifacts.SidVocabulary),
      embeddings=tfx.dsl.Channel(type=artifacts.ItemEmbeddings),
      sid_encoder=tfx.dsl.Channel(type=artifacts.RQVAEModel),
      feature_state=tfx.dsl.Channel(type=artifacts.FeatureState),
      train_splits=train_splits, eval_splits=eval_splits, ranking_config=config))


def _train(tmp_path, inputs, name, train_splits, eval_splits, base_model=None, config=CONFIG, **more):
  outputs = conftest.trainer_outputs(tmp_path / name)
  input_dict = dict(inputs, **({"base_model": [base_model]} if base_model else {}), **more)
  executor.Executor().Do(input_dict, outputs, _properties(train_splits, eval_splits, config))
  with open(os.path.join(outputs["model_run"][0].uri, trainer.METRICS_FILE)) as f:
    return outputs["model"][0], json.load(f)


def _signatures(model):
  return tf.saved_model.load(path_utils.serving_model_path(model.uri)).signatures


def _scores(model):
  serve = _signatures(model)["serving_default"]
  records = [conftest.example(item_id=i, history=[1], history_liked=[1], history_age_days=[0]).SerializeToString()
             for i in range(1, 7)]
  return serve(examples=tf.constant(records))["probability"].numpy()


def _spans(model):
  return model.get_int_custom_property("span"), model.get_string_custom_property("trained_spans")


@pytest.fixture(scope="module")
def warmup(tmp_path_factory, inputs):
  return _train(tmp_path_factory.mktemp("warmup"), inputs, "warmup", ["backfill"], ["span_1"])


def test_warm_up_then_a_step_warm_started_from_it(tmp_path, inputs, warmup):
  warmup, metrics = warmup
  assert metrics["warm_started_from"] is None and metrics["epochs"] == 2
  assert metrics["train_examples"] == 24 and metrics["eval"]["overall"]["examples"] == 4
  assert 0 <= metrics["eval"]["overall"]["auc"] <= 1
  assert os.path.exists(os.path.join(trainer.checkpoint_dir(path_utils.serving_model_path(warmup.uri)), "ckpt.index"))
  assert _spans(warmup) == (-1, "backfill")  # before every span

  step, metrics = _train(tmp_path, inputs, "step", ["span_1"], ["span_2"], base_model=warmup)
  assert _spans(step) == (1, "1")
  assert metrics["warm_started_from"] == path_utils.serving_model_path(warmup.uri)
  assert metrics["epochs"] == 1 and metrics["train_examples"] == 4
  assert metrics["eval"]["unknown_candidates"] == 1 and metrics["eval"]["overall"]["examples"] == 4
  assert not np.allclose(_scores(step), _scores(warmup))  # trained further from the same weights
  # The serving model carries the frozen RQ-VAE: an unknown item is ranked through its content.
  served = _signatures(step)
  assert set(served) == {"serving_default", "rank", "rank_with_embeddings"}  # no text encoder given
  ranked = served["rank_with_embeddings"](
      history=tf.constant([1], tf.int64), history_liked=tf.constant([1], tf.int64),
      history_age_days=tf.constant([0], tf.int64),
      current_item=tf.constant(0, tf.int64), candidates=tf.constant([2, 99, 98], tf.int64),
      user_id=tf.constant(0, tf.int64), candidate_embeddings=tf.constant(np.eye(3, 4, dtype=np.float32)))
  assert ranked["scored_by"].numpy().tolist() == [b"catalog", b"content", b"content"]


def test_a_warm_up_trains_on_the_latest_warmup_examples_only(tmp_path, inputs):
  _, metrics = _train(tmp_path, inputs, "capped", ["backfill"], [],
                      config={**CONFIG, "warmup_examples": 6, "batch_size": 2})
  assert metrics["train_examples"] == 6 and metrics["span_examples"] == 24
  assert metrics["train_batches"] == 2 * 3  # 2 epochs of the 6 examples kept


def test_a_refresh_remaps_the_base_model_onto_the_new_sids(tmp_path, inputs, warmup):
  # A refresh moved item 6 from [2, 2] to [3, 0], next to item 4 ([3, 3]); same vocabulary (stable codes: its
  # pieces copied). Learning rates 0: what differs from the base model is the remap's doing.
  warmup, _ = warmup
  codes = [*CODES[:5], [3, 0]]
  refreshed = dict(inputs, semantic_ids=[conftest.semantic_ids_artifact(tmp_path / "sids", codes, K)])
  remap = lambda name, **pieces: _train(tmp_path, refreshed, name, ["backfill"], [], base_model=warmup,
                                        config={**CONFIG, "remap_examples": 6, "step_lr_scale": 0.0, **pieces},
                                        previous_semantic_ids=inputs["semantic_ids"],
                                        previous_vocabulary=inputs["vocabulary"])
  remapped, metrics = remap("remap", remap_pieces="copy")
  assert metrics["warm_started_from"] == path_utils.serving_model_path(warmup.uri)
  assert metrics["remapped"]["rows_copied"] == metrics["remapped"]["rows"]
  assert metrics["train_examples"] == 6 and metrics["epochs"] == 1 and metrics["span_examples"] == 24
  before, after = _scores(warmup), _scores(remapped)
  # Items 1, 2, 3 and 5 kept their SIDs and SID clusters: scored as before. Item 6 has another SID, and item 4's
  # first-code cluster now counts item 6's interactions (re-keyed; a plain warm start would keep the old counts).
  np.testing.assert_allclose(after[[0, 1, 2, 4]], before[[0, 1, 2, 4]], rtol=1e-6)
  assert abs(after[3] - before[3]) > 1e-4 and abs(after[5] - before[5]) > 1e-4
  # By default (an RQ-VAE from scratch gives codes new meanings) every row is fitted, none kept as it was.
  _, metrics = remap("remap_fit")
  assert metrics["remapped"]["rows_copied"] == 0 < metrics["remapped"]["rows"]


def _train_on_workers(tmp_path, inputs, name, workers, train_splits, eval_splits):
  model, run = conftest.train_on_workers(tmp_path / name, inputs, _properties(train_splits, eval_splits), workers)
  with open(os.path.join(run.uri, trainer.METRICS_FILE)) as f:
    return model, json.load(f)


def _served_auc(model, examples, split):
  """AUC of the exported model's serving_default on `split`'s interactions, as the trainer computes it."""
  files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
  records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
  labels = np.array([tf.train.Example.FromString(r).features.feature["liked"].int64_list.value[0] for r in records])
  scores = _signatures(model)["serving_default"](examples=tf.constant(records))["probability"].numpy()
  return evaluation.sliced_auc(labels, scores, {"overall": np.ones(len(labels), bool)})["overall"]["auc"]


def test_two_worker_training_restores_into_the_single_worker_step_and_scores_the_same(tmp_path, inputs):
  distributed, metrics = _train_on_workers(tmp_path, inputs, "two", 2, ["backfill"], ["span_1"])
  assert metrics["workers"] == 2 and metrics["train_examples"] == 24
  # The next (single-process) step restores the two workers' model and scores the backfill with it before
  # training: the same AUC as the two workers' exported model gives the same interactions.
  _, step = _train(tmp_path, inputs, "step", ["span_1"], ["backfill"], base_model=distributed)
  assert step["workers"] == 1 and step["warm_started_from"] == path_utils.serving_model_path(distributed.uri)
  assert step["eval"]["overall"]["auc"] == pytest.approx(_served_auc(distributed, inputs["examples"][0], "backfill"),
                                                         abs=1e-9)


def test_an_empty_span_carries_the_model_over_and_says_so(tmp_path, inputs, warmup):
  warmup, _ = warmup
  carried, metrics = _train(tmp_path, inputs, "empty", ["span_7"], ["span_8"], base_model=warmup)
  assert metrics["missing_splits"] == ["span_7", "span_8"]
  assert _spans(carried) == (7, "7")  # the step of span 7, even without data
  assert metrics["train_examples"] == 0 and metrics["eval"] == {"examples": 0}
  assert metrics["steady_examples_per_second"] is None
  np.testing.assert_allclose(_scores(carried), _scores(warmup), rtol=1e-6)


def test_a_model_records_the_last_span_it_was_trained_on():
  daily = standard_artifacts.Examples()
  daily.span = 17590  # the daily ingestion's one split holds the artifact's span
  assert executor.trained_spans(daily, ["interactions"]) == (17590, "17590")
  whole = standard_artifacts.Examples()  # one split per span
  assert executor.trained_spans(whole, ["backfill", "span_17588", "span_17589"]) == (17589, "backfill..17589")
  assert executor.trained_spans(whole, ["span_17590", "span_17588"]) == (17590, "17588..17590")


def test_unknown_ranking_settings_are_refused_when_the_pipeline_is_built():
  with pytest.raises(ValueError, match=r"unknown ranking settings \['layers'\]"):
    RankingTrainer(examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
                   semantic_ids=tfx.dsl.Channel(type=artifacts.SemanticIds),
                   vocabulary=tfx.dsl.Channel(type=artifacts.SidVocabulary),
                   embeddings=tfx.dsl.Channel(type=artifacts.ItemEmbeddings),
                   sid_encoder=tfx.dsl.Channel(type=artifacts.RQVAEModel),
                   train_splits=["span_1"], eval_splits=["span_2"], ranking_config={"layers": 3})
