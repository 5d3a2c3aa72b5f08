"""RetrievalEvaluator's executor on artifacts in a temp dir: the blessing's properties and decision, and the
figures against the metrics computed directly."""

import json
import os

import pytest
from tfx.components.evaluator import constants
from tfx.types import standard_artifacts
from tfx.utils import path_utils

import conftest
from components.retrieval_evaluator import executor
from models.recommend import two_stage
from models.retrieval import evaluation, serving, trainer
from models.retrieval.config import RetrievalConfig
from models.retrieval.model import TigerModel

CODES = [[0, 1], [0, 2], [1, 0], [1, 3], [2, 2], [3, 1]]  # items 1..6
CONFIG = RetrievalConfig(encoder_layers=1, decoder_layers=1, heads=2, head_dim=4, d_model=8, mlp_dim=16,
                         user_buckets=4, history_length=3, suffix_size=2, beam_width=6, prefix_rows=32)


def _model(root, name, seed, catalog, **settings):
  artifact = standard_artifacts.Model()
  artifact.uri = str(root / name)
  artifact.id = seed + 1
  config = RetrievalConfig(**{**CONFIG.__dict__, "seed": seed, **settings})
  serving.export(TigerModel(config, catalog.layout(config.suffix_size, config.user_buckets)), catalog,
                 path_utils.serving_model_path(artifact.uri), trained_items=catalog.item_ids)
  return artifact


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  root = tmp_path_factory.mktemp("inputs")
  sids = conftest.semantic_ids_artifact(root / "sids", CODES, 4)
  catalog = trainer.load_catalog({"semantic_ids_uri": sids.uri, "codebook_size": 4})
  rows = [{"user_id": 1 + i % 2, "item_id": item, "history": [1, 2, 3][:i % 3], "history_liked": [1, 1, 1][:i % 3],
           "history_age_days": [9, 2, 0][:i % 3], "liked": 1,
           "item_segment": "cold_start" if item == 6 else "head"} for i, item in enumerate([4, 5, 6, 1, 2])]
  examples = conftest.examples_artifact(root / "examples", {"interactions": rows})
  return {"examples": [examples], "semantic_ids": [sids], "model": [_model(root, "candidate", 0, catalog)],
          "baseline_model": [_model(root, "baseline", 1, catalog)]}


def _evaluate(tmp_path, inputs, **properties):
  outputs = {executor.BLESSING: [standard_artifacts.ModelBlessing()],
             executor.EVALUATION: [standard_artifacts.ModelEvaluation()]}
  for key, [artifact] in outputs.items():
    artifact.uri = str(tmp_path / key)
  executor.Executor().Do(inputs, outputs, {executor.SPLIT: "interactions", executor.MIN_RECALL: 0.0,
                                           executor.MAX_REGRESSION: 1.0, executor.MIN_EXAMPLES: 1, **properties})
  with open(os.path.join(outputs[executor.EVALUATION][0].uri, executor.METRICS_FILE)) as f:
    return outputs[executor.BLESSING][0], json.load(f)


def test_scores_both_models_over_the_catalog_and_blesses(tmp_path, inputs):
  blessing, report = _evaluate(tmp_path, inputs)
  files = [os.path.join(inputs["examples"][0].uri, "Split-interactions", "*")]
  catalog = trainer.load_catalog({"semantic_ids_uri": inputs["semantic_ids"][0].uri, "codebook_size": 4})
  for key, name in (("candidate", "model"), ("baseline", "baseline_model")):
    direct = trainer.evaluate(serving.load(path_utils.serving_model_path(inputs[name][0].uri), catalog), files, 6,
                              keep=None)
    assert report[key].keys() == direct.keys()
    for name in ("overall", "new_items", "liked"):
      assert report[key][name] == pytest.approx(direct[name])
  assert report["candidate"]["overall"]["examples"] == 5 and report["candidate"]["new_items"]["examples"] == 1
  assert report["candidate"]["sampled_from"] == 5
  assert report["blessed"] and report["served"] == {}
  assert blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1
  assert blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY) == 1
  assert blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY) == 2
  assert blessing.get_string_custom_property("model_kind") == "retrieval"
  assert os.path.exists(os.path.join(blessing.uri, constants.BLESSED_FILE_NAME))


def test_both_models_are_scored_on_the_candidates_sample(tmp_path, inputs):
  catalog = trainer.load_catalog({"semantic_ids_uri": inputs["semantic_ids"][0].uri, "codebook_size": 4})
  sampled = {**inputs, "model": [_model(tmp_path, "sampled", 0, catalog, evaluation_examples=3)]}
  _, report = _evaluate(tmp_path, sampled)
  files = [os.path.join(inputs["examples"][0].uri, "Split-interactions", "*")]
  keep = evaluation.sample(5, 3, seed=0)
  for key, name in (("candidate", "model"), ("baseline", "baseline_model")):
    direct = trainer.evaluate(serving.load(path_utils.serving_model_path(sampled[name][0].uri), catalog), files, 6,
                              keep=keep)
    assert report[key]["overall"]["examples"] == 3 and report[key]["sampled_from"] == 5
    assert report[key]["overall"] == pytest.approx(direct["overall"])


def test_the_served_model_gets_one_request_per_liked_interaction_up_to_a_cap(tmp_path, inputs, two_stage_sources,
                                                                            monkeypatch):
  ranking_dir, retrieval_dir, catalog, vectors = two_stage_sources
  two_stage.export(two_stage.TwoStage(retrieval_dir, ranking_dir, catalog, catalog.item_ids, vectors,
                                      num_candidates=6), str(tmp_path / "served" / "7"))
  files = [os.path.join(inputs["examples"][0].uri, "Split-interactions", "*")]
  assert executor.served_two_stage(files, str(tmp_path / "served"))["recommend"]["examples"] == 5
  monkeypatch.setattr(executor, "SERVED_REQUESTS", 3)
  served = executor.served_two_stage(files, str(tmp_path / "served"))
  assert served["version"] == 7 and served["recommend"]["examples"] == served["retrieve"]["examples"] == 3
  keep = evaluation.sample(5, 2, seed=0)
  assert executor.served_two_stage(files, str(tmp_path / "served"), keep)["recommend"]["examples"] == 2


def test_refuses_too_few_examples_a_low_recall_and_a_regression():
  candidate = {"overall": {"examples": 80, "recall@10": 0.05}}
  assert executor.decide(candidate, {}, 0.01, 0.02, 50) == []
  assert executor.decide(candidate, {}, 0.01, 0.02, 100) == ["80 interactions, fewer than 100"]
  assert executor.decide(candidate, {}, 0.06, 0.02, 50) == ["recall@10 0.0500 below 0.06"]
  assert executor.decide(candidate, {"overall": {"recall@10": 0.08}}, 0.01, 0.02, 50) == [
      "recall@10 0.0500 more than 0.02 below the blessed model's 0.0800"]
  assert executor.decide(candidate, {"overall": {"recall@10": 0.07}}, 0.01, 0.02, 50) == []


def test_not_blessed_writes_not_blessed(tmp_path, inputs):
  blessing, report = _evaluate(tmp_path, inputs, **{executor.MIN_RECALL: 1.01})
  assert not report["blessed"] and report["reasons"][0].startswith("recall@10")
  assert blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 0
  assert os.path.exists(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME))
