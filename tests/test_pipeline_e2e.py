"""The whole pipeline under LocalDagRunner on a tiny MovieLens directory."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from tfx import v1 as tfx
from tfx.utils import path_utils

import conftest
from formats import spans
from models.ranking import trainer as ranking_trainer
from pipeline import configs, local_runner, pipeline, progress, summary

DAY1, DAY2 = (spans.span_of(conftest.DAY0 + d * conftest.DAY, "day") for d in (1, 2))
# A fourth day, so that two continuous-training steps each have a next day to be evaluated on.
RATINGS = conftest.TINY_RATINGS + f"1,4,4.0,{conftest.DAY0 + 3 * conftest.DAY}\n" \
    f"2,3,1.0,{conftest.DAY0 + 3 * conftest.DAY + 9}\n"
SID_AND_RANKING_NODES = {"MovieLensExampleGen", "StatisticsGen", "SchemaGen", "InteractionsSchema",
                         "ExampleValidator", "ItemStatisticsGen", "ItemsSchema", "ItemExampleValidator",
                         "ContentEmbedder", "RQVAETrainer", "SemanticIdAssigner", "RQVAETrainerV0",
                         "SemanticIdAssignerV0", "SidQualityReport", "SidVocabBuilder",
                         "RankingTrainer_Warmup", "Evaluator_Warmup", "RankingTrainer_2018_01_02",
                         "Evaluator_2018_01_02", "Pusher"}


@pytest.fixture
def movielens(tmp_path):
  return conftest.write_movielens(tmp_path / "movielens", ratings=RATINGS)


def _run(tmp_path, data_root, **overrides):
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(tmp_path / "metadata.sqlite"))
  kwargs = dict(
      pipeline_name="e2e", pipeline_root=str(tmp_path / "root"), data_root=data_root,
      span_period="day", start_date="2018-01-02", history_length=configs.HISTORY_LENGTH,
      max_tags=configs.MAX_TAGS, bad_row_policy="quarantine", max_bad_row_fraction=0.0,
      embedding_batch_size=2,
      rqvae_config={"num_levels": 2, "codebook_size": 2, "latent_dim": 4, "hidden_dim": 8,
                    "epochs": 2, "batch_size": 4, "kmeans_iterations": 2},
      sid_table_budgets=[5, 8], sid_vocab_train_splits=["backfill"],
      ranking_config={"representation": "spm", "table_rows": 8, "embedding_dim": 4, "hidden_units": [8]},
      ranking_spans=[DAY1], min_auc=0.5, serving_model_dir=str(tmp_path / "serving"),
      rqvae_v0_cutoff="2018-01-02", beam_pipeline_args=configs.BEAM_PIPELINE_ARGS,
      metadata_connection_config=connection)
  kwargs.update(overrides)
  with progress.watch(io.StringIO()) as watcher:
    tfx.orchestration.LocalDagRunner().run(pipeline.create_pipeline(**kwargs))
  store = metadata_store.MetadataStore(connection)
  return watcher, summary.latest_run_outputs(store, "e2e"), store


def test_pipeline_runs_end_to_end_then_hits_the_cache(tmp_path, movielens):
  watcher, outputs, store = _run(tmp_path, movielens)
  assert set(outputs) == SID_AND_RANKING_NODES
  assert not any(s["cached"] for s in watcher.finished.values())
  embeddings = outputs["ContentEmbedder"]["embeddings"]
  assert embeddings.custom_properties["count"].int_value == 4
  assert embeddings.custom_properties["dim"].int_value == 384
  assert outputs["SemanticIdAssigner"]["semantic_ids"].custom_properties["items"].int_value == 4
  assert outputs["RQVAETrainerV0"]["model"].custom_properties["train_items"].int_value == 2
  report_dir = outputs["SidQualityReport"]["report"].uri
  assert sorted(os.listdir(report_dir)) == ["prefix_similarity.png", "report.html", "report.json",
                                            "utilisation.png"]
  vocabulary = outputs["SidVocabBuilder"]["vocabulary"]
  assert vocabulary.custom_properties["impressions"].int_value == 2  # the backfill day's ratings
  assert sorted(os.listdir(vocabulary.uri)) == ["item_impressions.tsv", "spm_5.model", "spm_8.model",
                                            "vocabulary.json"]
  assert summary.anomaly_lines(outputs["ExampleValidator"]["anomalies"].uri) == []
  assert summary.anomaly_lines(outputs["ItemExampleValidator"]["anomalies"].uri) == []
  text = io.StringIO()
  summary.print_summary(store, "e2e", stream=text)
  assert "interactions 7 in 4 splits (day spans), liked 57.1%; items 4 (0 never rated)" in text.getvalue()

  # Continuous training: the day-1 step restores the warm-up step and is evaluated on day 2.
  step = json.load(open(os.path.join(outputs["RankingTrainer_2018_01_02"]["model_run"].uri,
                                     ranking_trainer.METRICS_FILE)))
  assert step["warm_started_from"].startswith(outputs["RankingTrainer_Warmup"]["model"].uri)
  assert step["train_examples"] == 2 and step["eval"]["overall"]["examples"] == 1
  assert step["eval"]["overall"]["auc"] is None  # one class on day 2: reported, not a crash
  blessing = outputs["Evaluator_2018_01_02"]["blessing"]
  assert blessing.custom_properties["blessed"].int_value == 0
  assert "pushed" not in outputs["Pusher"]["pushed_model"].custom_properties or \
      outputs["Pusher"]["pushed_model"].custom_properties["pushed"].int_value == 0

  again, cached_outputs, _ = _run(tmp_path, movielens)
  assert len(again.finished) == len(SID_AND_RANKING_NODES) and all(s["cached"] for s in again.finished.values())
  assert cached_outputs["ContentEmbedder"]["embeddings"].id == embeddings.id

  # A new span adds one step; every earlier step comes from the cache.
  added, added_outputs, _ = _run(tmp_path, movielens, ranking_spans=[DAY1, DAY2])
  ran = {node for node, status in added.finished.items() if not status["cached"]}
  assert ran == {"RankingTrainer_2018_01_03", "Evaluator_2018_01_03", "Pusher"}
  new_step = json.load(open(os.path.join(added_outputs["RankingTrainer_2018_01_03"]["model_run"].uri,
                                         ranking_trainer.METRICS_FILE)))
  assert new_step["warm_started_from"].startswith(outputs["RankingTrainer_2018_01_02"]["model"].uri)
  assert new_step["eval"]["overall"]["examples"] == 2  # one liked, one not: AUC is defined
  assert new_step["eval"]["overall"]["auc"] in (0.0, 0.5, 1.0)

  # The step's serving model carries the frozen encoders: a new movie is ranked from its text.
  served = tf.saved_model.load(path_utils.serving_model_path(
      added_outputs["RankingTrainer_2018_01_03"]["model"].uri)).signatures
  assert set(served) == {"serving_default", "rank", "rank_with_embeddings", "rank_with_text"}
  ranked = served["rank_with_text"](
      history=tf.constant([1, 2], tf.int64), current_item=tf.constant(2, tf.int64),
      candidates=tf.constant([3, 10 ** 9], tf.int64),
      candidate_texts=tf.constant(["No Genres Movie", "A film about toys (2030). Genres: Animation"]))
  assert ranked["scored_by"].numpy().tolist() == [b"catalog", b"content"]
  assert np.isfinite(ranked["scores"].numpy()).all()


def test_precomputed_embeddings_replace_the_encoder(tmp_path, movielens):
  path = tmp_path / "vectors.npz"
  np.savez(path, item_ids=np.arange(1, 5), embeddings=np.eye(4, 16, dtype=np.float32) + 0.1)
  _, outputs, _ = _run(tmp_path, movielens, precomputed_embeddings=str(path))
  assert "ContentEmbedder" not in outputs
  assert outputs["EmbeddingImporter"]["embeddings"].custom_properties["dim"].int_value == 16


def test_main_command_reports_refused_input_without_a_stack_trace(tmp_path, capsys):
  data = conftest.write_movielens(tmp_path / "bad", ratings=conftest.TINY_RATINGS + "1,2,9.0,1514764800\n")
  assert local_runner.main(["--data_root", data, "--output_root", str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err
  assert "input data refused" in err
  assert "ratings.csv:7: rating out of range [0.5, 5.0]" in err
  assert "Traceback" not in err
