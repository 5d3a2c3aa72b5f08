import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

import conftest
from formats import artifacts, sid_vocabulary, spans
from formats import interaction_features as fields
from formats.errors import InputDataError
from models.ranking import baselines, evaluation
from models.ranking.config import RankingConfig
from pipeline import configs, experiments
from pipeline import runs as pipeline_runs

K = 4
VECTORS = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)  # items 1..4


def _record(store: metadata_store.MetadataStore, node_id: str, outputs, **exec_properties) -> None:
  """Records in ML Metadata, as a pipeline run would, a successful execution of `node_id` that output
  `outputs` ({output key: artifact})."""
  execution = metadata_store_pb2.Execution(
      type_id=store.put_execution_type(metadata_store_pb2.ExecutionType(name=node_id)),
      last_known_state=metadata_store_pb2.Execution.COMPLETE)
  for name, value in exec_properties.items():
    execution.custom_properties[name].string_value = value
  written = []
  for key, artifact in outputs.items():
    artifact.type_id = store.put_artifact_type(artifact.artifact_type)
    event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
    event.path.steps.add().key = key
    written.append((artifact.mlmd_artifact, event))
  node = metadata_store_pb2.Context(type_id=store.put_context_type(metadata_store_pb2.ContextType(name="node")),
                                    name=f"{configs.PIPELINE_NAME}.{node_id}")
  store.put_execution(execution, written, [node], reuse_context_if_already_exist=True)


def _examples(path, span: int, item_ids):
  """SpanExampleGen's examples artifact of `span`: one interaction per item id."""
  rows = [dict(item_id=i, current_item=0, history=[], liked=1, item_segment="head", timestamp=span * 86400)
          for i in item_ids]
  artifact = conftest.examples_artifact(path, {"interactions": rows})
  artifact.set_int_custom_property(spans.SPAN_PROPERTY, span)
  return artifact


@pytest.fixture(name="v0_rqvae", scope="module")
def _v0_rqvae(tmp_path_factory):
  return conftest.rqvae_artifact(tmp_path_factory.mktemp("rqvae_v0"), VECTORS, num_levels=2, codebook_size=K)


@pytest.fixture(name="loop")
def _loop(tmp_path, v0_rqvae):
  """A loop's ML Metadata after the SID refresh (backfill = span 9, items 1..3) and daily runs of spans
  10 (twice), 11 (new item 4) and 12 (no interactions): (output root, store, in-memory v0 RQ-VAE)."""
  config = configs.PipelineConfig(input_base=str(tmp_path / "input"), output_root=str(tmp_path / "out"),
                                  span_period="day", start_date=spans.span_start(10, "day").isoformat())
  pipeline_runs.save_config(config)
  store = metadata_store.MetadataStore(pipeline_runs.connection(config))
  vocabulary = artifacts.SidVocabulary()
  vocabulary.uri = str(tmp_path / "vocabulary")
  os.makedirs(vocabulary.uri)
  sid_vocabulary.write(vocabulary, {4: b"spm4", 8: b"spm8"}, {"table_budgets": [4, 8], "codebook_size": K},
                       np.array([1, 2, 3]), np.array([5, 0, 2]))
  v0_model, v0 = v0_rqvae
  _record(store, "SpanExampleGen", {"examples": _examples(tmp_path / "backfill", 9, [1, 2, 3])},
          end_date=config.start_date)
  _record(store, "ContentEmbedder", {"embeddings": conftest.embeddings_artifact(tmp_path / "embeddings",
                                                                                VECTORS[:3])})
  _record(store, "RQVAETrainerV0", {"model": v0_model})
  _record(store, "SemanticIdAssignerV0", {"semantic_ids": conftest.semantic_ids_artifact(
      tmp_path / "v0", [[3, 3], [2, 2], [1, 1]], K)})
  _record(store, "SidVocabBuilder", {"vocabulary": vocabulary})
  _record(store, "SpanExampleGen", {"examples": _examples(tmp_path / "span10", 10, [1])})
  _record(store, "SpanExampleGen", {"examples": _examples(tmp_path / "span11", 11, [4, 2])})
  _record(store, "SpanExampleGen", {"examples": _examples(tmp_path / "span10_again", 10, [3, 1])})
  _record(store, "SpanExampleGen", {"examples": _examples(tmp_path / "span12", 12, [])})
  _record(store, "NewItemEmbedder", {"embeddings": conftest.embeddings_artifact(tmp_path / "embeddings_11",
                                                                                VECTORS)})
  _record(store, "SemanticIdAssigner", {"semantic_ids": conftest.semantic_ids_artifact(
      tmp_path / "sids_11", [[0, 1], [1, 2], [2, 3], [3, 0]], K)})
  return config.output_root, store, v0


def test_inputs_are_the_backfill_then_each_spans_latest_run_over_the_latest_catalog(loop):
  output_root, _, v0 = loop
  inputs = experiments.load_inputs(output_root)
  assert [(name, split["item_id"].numpy().tolist()) for name, split in inputs.splits.items()] == [
      ("backfill", [1, 2, 3]), ("span_10", [3, 1]), ("span_11", [4, 2])]
  v1, v0_catalog = inputs.catalogs["v1"], inputs.catalogs["v0"]
  assert v1.item_ids.tolist() == v0_catalog.item_ids.tolist() == [1, 2, 3, 4]
  assert v1.codes.tolist() == [[0, 1], [1, 2], [2, 3], [3, 0]]
  # Item 4 is new since the SID refresh: encoded by the frozen v0 RQ-VAE.
  assert v0_catalog.codes.tolist() == [[3, 3], [2, 2], [1, 1], v0.encode(VECTORS[3:]).numpy()[0].tolist()]
  np.testing.assert_array_equal(v1.content, VECTORS)
  assert inputs.impressions.tolist() == [5, 0, 2, 0]
  assert inputs.spm_models == {4: b"spm4", 8: b"spm8"}
  assert list(experiments.load_inputs(output_root, max_spans=1).splits) == ["backfill", "span_10"]


def test_embeddings_that_miss_catalog_items_are_refused(loop, tmp_path):
  output_root, store, _ = loop
  _record(store, "NewItemEmbedder", {"embeddings": conftest.embeddings_artifact(tmp_path / "embeddings_12",
                                                                                VECTORS[:3])})
  with pytest.raises(InputDataError, match=r"item embeddings at .*embeddings_12 lack 1 of the items of the "
                                           r"Semantic IDs at .*sids_11: 4$"):
    experiments.load_inputs(output_root)


def _reversed_spans(copies: int):
  """A backfill where items 1 and 3 (like-rate 0.9 so far) are liked and 2 and 4 (0.1) are not, then a span
  where it is the other way round."""
  def split(liked_items):
    rows = [dict(item_id=i, current_item=0, history=[], liked=int(i in liked_items), item_segment="head",
                 timestamp=1, item_prior_count_all=20, item_prior_liked=18 if i in (1, 3) else 2)
            for i in (1, 2, 3, 4) for _ in range(copies)]
    return tf.io.parse_example([conftest.example(**row).SerializeToString() for row in rows],
                               {**fields.EVALUATION_SPEC, **fields.COUNTING_SPEC})
  return {"backfill": split({1, 3}), "span_10": split({2, 4})}


def test_baselines_are_fitted_on_earlier_spans_only():
  # Fitted on the backfill alone, the learned baselines rank the span exactly backwards, as the item's
  # like-rate does (the users have no counters: 0.5); fitted on the span too, they would follow it.
  inputs = experiments.Inputs(splits=_reversed_spans(copies=50), catalogs={}, spm_models={}, impressions=None)
  assert {r["arm"]: r["slices"]["overall"]["auc"] for r in experiments.run_baselines(inputs)} == {
      baselines.ITEM_LIKE_RATE: 0.0, baselines.USER_LIKE_RATE: 0.5, baselines.COUNTER_REGRESSION: 0.0,
      baselines.COUNTER_TREES: 0.0}


def test_an_arm_scores_each_span_before_it_trains_on_it(loop):
  # Trained on the backfill, the model ranks the span's items backwards: AUC 0, whatever it learns from it.
  inputs = experiments.load_inputs(loop[0])
  inputs = experiments.Inputs(_reversed_spans(copies=100), inputs.catalogs, inputs.spm_models, inputs.impressions)
  config = RankingConfig(representation="random_hash", table_rows=16, embedding_dim=4, hidden_units=[8],
                         use_history=False, epochs=30, warmup_epochs=30, batch_size=64, learning_rate=0.03,
                         step_lr_scale=1.0)
  run = experiments.run_arm(config, inputs, inputs.catalogs["v1"], None)
  assert run["evaluated_spans"] == 1 and run["slices"]["overall"]["auc"] == 0.0


def test_no_loop_output_is_refused(tmp_path):
  with pytest.raises(InputDataError, match=r"config.json not found: run the main command"):
    experiments.load_inputs(str(tmp_path))


def _run(arm, representation, seed, auc, history=False):
  slices = {name: {"auc": auc, "examples": 10, "spans": 1} for name in evaluation.SLICES}
  return {"arm": arm, "representation": representation, "seed": seed, "use_history": history,
          "embedding_rows": 100, "lookups_per_item": 1.0, "slices": slices}


def test_relative_auc_is_against_the_smallest_random_hash_of_the_same_seed_and_setting():
  hashing = RankingConfig(representation="random_hash", table_rows=1024, use_history=False).name
  sids = RankingConfig(representation="spm", table_rows=4096, use_history=False).name
  runs = [_run(hashing, "random_hash", 0, 0.60), _run(hashing, "random_hash", 1, 0.50),
          _run(sids, "spm", 0, 0.66), _run(sids, "spm", 1, 0.55)]
  rows = {r["arm"]: r for r in experiments.aggregate(runs, budgets=[1024, 4096])}
  spm = rows[sids]
  assert spm["overall_auc"]["mean"] == pytest.approx(0.605) and spm["overall_auc"]["n"] == 2
  assert spm["overall_relative_pct"]["mean"] == pytest.approx(10.0)  # +10% for both seeds
  assert spm["overall_relative_pct"]["std"] == pytest.approx(0.0, abs=1e-9)
  assert rows[hashing]["overall_relative_pct"]["mean"] == pytest.approx(0.0)


def test_grid_covers_every_representation_and_both_history_settings():
  arms = experiments.grid([1024, 4096, 16384])
  assert len(arms) == 2 * (3 * 3 + 3 + 2)
  assert {a["representation"] for a in arms} == {"random_hash", "spm", "prefix_ngram", "dense", "unigram", "bigram"}


def test_counting_baselines_score_each_evaluated_span_and_enter_the_report():
  def split(rows):
    return tf.io.parse_example([conftest.example(**row).SerializeToString() for row in rows],
                               fields.EVALUATION_SPEC)
  # Liked exactly when the item was liked before: the item like-rate ranks perfectly, the user's is flat.
  rows = lambda n: [dict(item_id=i, liked=i % 2, item_segment="head", item_prior_count_all=4,
                         item_prior_liked=4 * (i % 2)) for i in range(1, n + 1)]
  inputs = experiments.Inputs(splits={"backfill": split(rows(6)), "span_10": split(rows(4)),
                                      "span_11": split(rows(8))}, catalogs={}, spm_models={}, impressions=None)
  counting = {b["arm"]: b["slices"] for b in experiments.run_baselines(inputs)}
  assert counting[baselines.ITEM_LIKE_RATE]["overall"] == {"auc": 1.0, "examples": 12, "spans": 2}
  assert counting[baselines.USER_LIKE_RATE]["overall"]["auc"] == 0.5
  assert counting[baselines.COUNTER_REGRESSION]["overall"]["auc"] == 1.0
  report = experiments.markdown([], [{"seed": 0, "slices": counting[baselines.ITEM_LIKE_RATE]}], [4],
                                experiments.run_baselines(inputs))
  assert "| item like-rate | 1.0000 | n/a | n/a |" in report.splitlines()


def test_a_data_directory_is_first_run_through_the_loop_over_every_span(tmp_path, monkeypatch, capsys):
  calls = []
  monkeypatch.setattr(experiments.local_runner, "main", lambda argv: calls.append(argv) or 2)
  assert experiments.main(["--data_root", "movielens", "--output_root", str(tmp_path), "--span_period", "week"]) == 2
  assert calls == [["--data_root", "movielens", "--output_root", str(tmp_path), "--replay_spans", "all",
                    "--span_period", "week"]]
  assert "the loop on --data_root did not finish" in capsys.readouterr().err
