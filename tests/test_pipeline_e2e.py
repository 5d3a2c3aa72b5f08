"""The production loop end to end on a tiny MovieLens directory: partition, SID refresh, then one daily
pipeline run per span, with the joins checked: resolver -> warm start, TFMA -> blessing -> push -> served
answer, a killed run resumed from the cache, and a not-blessed model not pushed."""

import json
import os
import pathlib
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tfx.components.pusher import executor as pusher_executor
from tfx.utils import path_utils

import conftest
from components.rqvae_trainer import executor as rqvae_executor
from components.sid_quality_report import executor as report_executor
from formats import artifacts, item_embeddings, semantic_ids, spans
from models.ranking import trainer as ranking_trainer
from models.retrieval import serving as retrieval_serving, trainer as retrieval_trainer
from pipeline import beam_runners, daily_run, datasets, local_runner, pipeline, runs, summary
from serving import query, server
from serving.model_config import ModelConfig

# The tiny data runs 20 years later than conftest's (2038): nothing may depend on the bundled data's dates.
YEARS = 20
DAY0 = conftest.DAY0 + 7305 * conftest.DAY  # 2038-01-01: 20 years of 365 days and 5 leap days later
START = "2038-01-02"
D1, D2, D3 = (spans.span_of(DAY0 + d * conftest.DAY, "day") for d in (1, 2, 3))
MOVIES = conftest.TINY_MOVIES + "5,New On Day One (2018),Comedy\n6,New On Day Two (2018),Drama|Romance\n"
RATINGS = "userId,movieId,rating,timestamp\n" + "".join(
    f"{user},{item},{rating},{conftest.DAY0 + day * conftest.DAY + second}\n"
    for user, item, rating, day, second in (
        (1, 1, 4.0, 0, 0), (1, 2, 3.0, 0, 1), (2, 2, 4.5, 0, 2), (2, 3, 1.0, 0, 3), (3, 1, 5.0, 0, 4),
        (3, 3, 2.0, 0, 5),  # backfill: the SID refresh's day
        (1, 3, 5.0, 1, 0), (1, 5, 1.0, 1, 1), (2, 1, 2.0, 1, 2), (2, 5, 4.0, 1, 3),
        (1, 6, 4.0, 2, 0), (3, 2, 1.0, 2, 1), (3, 5, 4.5, 2, 2), (2, 6, 2.0, 2, 3),
        (3, 6, 5.0, 3, 0), (4, 2, 2.0, 3, 1)))
TINY = dict(rqvae={"num_levels": 2, "codebook_size": 2, "latent_dim": 4, "hidden_dim": 8,
                   "decoder_hidden_dim": 8, "pretrain_epochs": 0, "epochs": 2, "refine_epochs": 0,
                   "batch_size": 4, "kmeans_iterations": 2},
            sid_table_budgets=[5, 8], embedding_batch_size=2,
            ranking={"representation": "spm", "table_rows": 8, "embedding_dim": 4, "hidden_units": [8]},
            retrieval={"encoder_layers": 1, "decoder_layers": 1, "heads": 2, "head_dim": 4, "d_model": 8,
                       "mlp_dim": 16, "user_buckets": 4, "prefix_rows": 64, "batch_size": 4, "warmup_epochs": 2},
            # Every model whose AUC is defined is blessed, unless a test says otherwise.
            min_auc=0.0, max_auc_regression=1.0, min_eval_examples=1, min_recall_at_10=0.0, max_recall_regression=1.0)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
  """The main command with flags only, on the tiny data shifted by 20 years: data profile, partition, SID
  refresh, and no daily run yet; returns the loop's config."""
  root = tmp_path_factory.mktemp("loop")
  datasets.shifted_movielens(conftest.write_movielens(root / "movielens", movies=MOVIES, ratings=RATINGS),
                             str(root / "shifted"), years=YEARS)
  (root / "tiny.json").write_text(json.dumps(TINY))
  assert local_runner.main(_main_args(root, "out")) == 0
  config = runs.load_config(str(root / "out"))
  assert (config.span_period, config.start_date, config.input_base) == ("day", START, str(root / "out" / "input"))
  return config


def _main_args(root, output: str):
  """The main command's flags for the loop's data under `root`, its outputs in root/output."""
  return ["--data_root", str(root / "shifted"), "--output_root", str(root / output), "--span_period", "day",
          "--start_date", START, "--min_span_interactions", "1", "--replay_spans", "0",
          "--config", str(root / "tiny.json")]


def _statistics(uri: str):
  """{split: its statistics as a dict}, features by name and floats to 12 digits: engines order the
  features and sum the moments in their own order (the last bit of a mean moves)."""
  def rounded(value):
    if isinstance(value, float):
      return float(f"{value:.12g}")
    if isinstance(value, dict):
      return {k: rounded(v) for k, v in value.items()}
    return [rounded(v) for v in value] if isinstance(value, list) else value
  found = {}
  for split in sorted(os.listdir(uri)):
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    with open(os.path.join(uri, split, "FeatureStats.pb"), "rb") as f:
      statistics.ParseFromString(f.read())
    [dataset] = json_format.MessageToDict(statistics)["datasets"]
    dataset["features"] = sorted(dataset["features"], key=lambda feature: feature["path"]["step"])
    found[split] = rounded(dataset)
  return found


def _outputs(config):
  return summary.latest_run_outputs(runs.store(config), config.pipeline_name)


def _completed_in_latest_run(config):
  """Nodes whose execution completed in the latest pipeline run."""
  store = runs.store(config)
  run = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: (c.create_time_since_epoch, c.id))
  completed = {e.id for e in store.get_executions_by_context(run.id)
               if e.last_known_state == metadata_store_pb2.Execution.COMPLETE}
  prefix = config.pipeline_name + "."
  return {node.name[len(prefix):] for node in store.get_contexts_by_type("node") if node.name.startswith(prefix)
          and completed & {e.id for e in store.get_executions_by_context(node.id)}}


def _input_of(store, output, key: str) -> metadata_store_pb2.Artifact:
  """The artifact the execution that produced `output` read under `key`."""
  [execution_id] = [e.execution_id for e in store.get_events_by_artifact_ids([output.id])
                    if e.type == metadata_store_pb2.Event.OUTPUT]
  [artifact_id] = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id])
                   if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == key]
  return store.get_artifacts_by_id([artifact_id])[0]


def _json(path):
  with open(path) as f:
    return json.load(f)


def test_sid_refresh_builds_the_frozen_inputs_and_the_warmup_model(loop):
  outputs = _outputs(loop)
  assert outputs["ContentEmbedder"]["embeddings"].custom_properties["count"].int_value == 4  # 1-4
  assert outputs["SemanticIdAssigner"]["semantic_ids"].custom_properties["items"].int_value == 4
  assert outputs["SidVocabBuilder"]["vocabulary"].custom_properties["impressions"].int_value == 6
  warmup = outputs["RankingTrainer"]["model"]
  assert warmup.custom_properties["span"].int_value == D1 - 1
  # Trained on the backfill: what tells a refresh's own warm-ups from the previous models it may start from.
  assert warmup.custom_properties["backfill"].int_value == 1
  assert outputs["RetrievalTrainer"]["model"].custom_properties["backfill"].int_value == 1
  step = _json(os.path.join(outputs["RankingTrainer"]["model_run"].uri, ranking_trainer.METRICS_FILE))
  assert step["train_examples"] == 6 and step["warm_started_from"] is None
  retrieval_step = _json(os.path.join(outputs["RetrievalTrainer"]["model_run"].uri, ranking_trainer.METRICS_FILE))
  assert retrieval_step["train_examples"] == 6 and retrieval_step["catalog_items"] == 4
  assert outputs["RetrievalTrainer"]["model"].custom_properties["span"].int_value == D1 - 1
  # What bench/scale.py reads: the refresh's per-component seconds and its process's own peak memory.
  record = _json(runs.record_path(loop.output_root, runs.REFRESH_RECORD))
  assert set(record["components"]) >= {"SpanExampleGen", "RQVAETrainer", "RetrievalTrainer"}
  components = record["components"].values()  # Each figure rounded to 0.1 s.
  assert record["seconds"] >= sum(c["seconds"] for c in components) - 0.05 * len(components)
  assert record["peak_rss_mb"] > 100


def test_the_refresh_on_a_dask_cluster_writes_the_in_process_artifacts(loop):
  # The project's Beam stages on a LocalCluster of 2 worker processes; TFX's StatisticsGen on multi_processing.
  root = pathlib.Path(loop.output_root).parent
  assert local_runner.main(_main_args(root, "dask") + ["--beam_runner", "dask"]) == 0
  dask = runs.load_config(str(root / "dask"))
  assert beam_runners.dask_address(dask.beam_pipeline_args) == beam_runners.LOCAL_CLUSTER
  outputs = {"in_process": _outputs(loop), "dask": _outputs(dask)}
  for node, key in (("SpanExampleGen", "examples"), ("SpanExampleGen", "items"), ("SpanExampleGen", "state"),
                    ("SemanticIdAssigner", "semantic_ids"), ("SidVocabBuilder", "vocabulary")):
    contents = {engine: conftest.artifact_contents(str(root), [found[node][key]], properties=False)
                for engine, found in outputs.items()}
    assert contents["dask"] == contents["in_process"] and contents["dask"], f"{node} {key}"
  statistics = {engine: _statistics(found["StatisticsGen"]["statistics"].uri) for engine, found in outputs.items()}
  assert statistics["dask"] == statistics["in_process"] and list(statistics["dask"]) == ["Split-interactions"]


def test_the_same_refresh_again_repeats_it_from_the_cache(loop, tmp_path):
  # On a copy of the loop's outputs (with or without its daily runs), the SID refresh again with the same start
  # and settings (remap on): a refresh is its start, so this is a rerun, with nothing before it to start from.
  config = loop.replace(output_root=str(tmp_path / "again"))
  assert config.refresh_warm_start == "remap"
  shutil.copytree(loop.output_root, config.output_root)
  finished = runs.run_with_engine(config, pipeline.create_sid_refresh_pipeline)
  # Every trainer from the cache (resolvers and pushers always run; the report reads the resolved SIDs).
  assert [node for node in ("RQVAETrainer", "SemanticIdAssigner", "SidVocabBuilder", "RankingTrainer",
                            "RetrievalTrainer") if not finished[node]["cached"]] == []


def test_daily_loop_joins(loop, monkeypatch, tmp_path):
  # Span 1: the warm-up model is scored on span 1 by TFMA and by the trainer, blessed, pushed; then trained on.
  first = daily_run.run_span(loop, D1)
  outputs = _outputs(loop)
  assert first["evaluated_model"]["span"] == D1 - 1 and first["blessed"] and first["pushed_version"]
  assert first["interactions"] == 4 and first["new_items"] == 1
  trainer_scored = first["trainer_scored"]
  for name, figures in first["tfma"].items():
    assert figures["examples"] == trainer_scored[name]["examples"]
  # On items the warm-up model knew, the same scores. The span's new items (cold start) differ: the trainer
  # scores them through the SIDs the run just gave them, TFMA through the exported model's catalog.
  known = [name for name in ("head", "long_tail") if trainer_scored[name]["auc"] is not None]
  assert known
  for name in known:
    assert first["tfma"][name]["auc"] == pytest.approx(trainer_scored[name]["auc"], abs=1e-3)
  # Staleness: item 5, new in span 1, got its SID from the refresh's RQ-VAE, which learned from items 1-4 only.
  staleness = trainer_scored[ranking_trainer.SID_STALENESS]
  assert (staleness["stale"]["examples"], staleness["refreshed"]["examples"]) == (2, 2)
  # Retrieval: the warm-up TIGER model, resolved and warm-started, is scored on span 1 over the run's catalog
  # by the RetrievalEvaluator (the trainer leaves that to it) with the figures of that model over that
  # catalog; blessed and pushed, and the two-stage model assembled from the two pushed versions.
  assert first["retrieval"]["blessed"] and first["retrieval_pushed_version"] and first["recommend_pushed_version"]
  evaluated, step = first["retrieval"]["candidate"], _json(os.path.join(
      outputs["RetrievalTrainer"]["model_run"].uri, ranking_trainer.METRICS_FILE))
  assert step["eval"] == {} and first["retrieval_trainer_scored"] == {}
  sids = outputs["SemanticIdAssigner"]["semantic_ids"]
  warmup = retrieval_serving.load(step["warm_started_from"], retrieval_trainer.load_catalog(
      {"semantic_ids_uri": sids.uri, "codebook_size": sids.custom_properties["codebook_size"].int_value}))
  expected = retrieval_trainer.evaluate(warmup, step["train_files"], warmup.beam_width, keep=None)
  assert evaluated["overall"]["examples"] == 4 and evaluated["new_items"]["examples"] == 2
  for name in ("overall", "new_items"):
    assert evaluated[name] == pytest.approx(expected[name])
  # Item 5, first rated in span 1, got a SID from the frozen RQ-VAE: the catalog grew by one.
  assert outputs["SemanticIdAssigner"]["semantic_ids"].custom_properties["items"].int_value == 5
  model_1 = outputs["RankingTrainer"]["model"]
  assert model_1.custom_properties["span"].int_value == D1 and "backfill" not in model_1.custom_properties
  assert _json(os.path.join(outputs["RankingTrainer"]["model_run"].uri, ranking_trainer.METRICS_FILE)
               )["train_files"] == [os.path.join(outputs["SpanExampleGen"]["examples"].uri, "Split-interactions", "*")]

  # Span 2, killed in the Pusher: nothing recorded; the re-run repeats none of what finished.
  def killed(*_):
    raise RuntimeError("killed")
  monkeypatch.setattr(pusher_executor.Executor, "Do", killed)
  with pytest.raises(RuntimeError):
    daily_run.run_span(loop, D2)
  assert not os.path.exists(daily_run.record_path(loop.output_root, D2))
  monkeypatch.undo()
  # Resolvers resolve again on every run (nothing to cache); every component that finished is reused.
  done_before_the_kill = {n for n in _completed_in_latest_run(loop) if not n.startswith("Latest")}
  assert {"SpanExampleGen", "Evaluator"} <= done_before_the_kill and "Pusher" not in done_before_the_kill
  second = daily_run.run_span(loop, D2)
  assert {name for name in done_before_the_kill if not second["components"][name]["cached"]} == set()
  assert not second["components"]["Pusher"]["cached"]
  outputs = _outputs(loop)
  # The model trained on span 1 (never on span 2) was evaluated on span 2 and pushed.
  assert second["evaluated_model"]["id"] == model_1.id and second["evaluated_model"]["span"] == D1
  assert second["pushed_version"] and int(second["pushed_version"]) > int(first["pushed_version"])
  # TFMA with a baseline (the warm-up model, blessed on span 1): the candidate's figures, not the baseline's or
  # the diff, are those the trainer got scoring span 2 with model 1 before training on it.
  blessing = outputs["Evaluator"]["blessing"].custom_properties
  assert blessing["current_model_id"].int_value == model_1.id != blessing["baseline_model_id"].int_value > 0
  known = [name for name in ("head", "long_tail") if second["trainer_scored"][name]["auc"] is not None]
  assert known
  for name in known:
    assert second["tfma"][name]["auc"] == pytest.approx(second["trainer_scored"][name]["auc"], abs=1e-3)
  # The two-stage model served during span 2 (pushed by span 1's run) scored on span 2's two liked interactions.
  served = second["retrieval"]["served"]
  assert served["version"] == int(first["recommend_pushed_version"])
  assert served["recommend"]["examples"] == served["retrieve"]["examples"] == 2

  # Blessing -> push -> served answer: the pushed version serves item 5 through its catalog SID, and a
  # new item through the vector of the content encoder the SID refresh pushed beside it, with the scores
  # of the SavedModels themselves.
  versions = sorted(int(v) for v in os.listdir(loop.serving_model_dir) if v.isdigit())
  assert versions == sorted([int(first["pushed_version"]), int(second["pushed_version"])])
  (encoder_version,) = os.listdir(loop.encoder_serving_dir)
  grpc_server, port, models = server.serve_models(
      [ModelConfig("sid_ranking", loop.serving_model_dir), ModelConfig("content_encoder", loop.encoder_serving_dir),
       ModelConfig("sid_recommend", loop.recommender_serving_dir)], port=0, poll_seconds=0.1)
  new_item, text = 10 ** 9, "A film nobody has rated (2040). Genres: Comedy"
  try:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
      query.wait_until_available(channel, "sid_ranking", 60)
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      plain = stub.Predict(query.rank_request("sid_ranking", [1, 3], 3, [5, 2, new_item]), timeout=30)
      embeddings = query.candidate_embeddings(channel, [5, 2, new_item], {new_item: text})
      with_content = stub.Predict(query.rank_request("sid_ranking", [1, 3], 3, [5, 2, new_item], embeddings),
                                  timeout=30)
      query.wait_until_available(channel, "sid_recommend", 60)
      recommended = stub.Predict(query.recommend_request("sid_recommend", [1, 3], k=10, user_id=1), timeout=30)
  finally:
    grpc_server.stop(0)
    for model in models.values():
      model.stop()
  encoder = tf.saved_model.load(os.path.join(loop.encoder_serving_dir, encoder_version))
  np.testing.assert_array_equal(embeddings[2], encoder.signatures["serving_default"](
      text=tf.constant([text]))["embedding"].numpy()[0])
  ranker = tf.saved_model.load(os.path.join(loop.serving_model_dir, str(versions[-1])))
  request = dict(history=tf.constant([1, 3], tf.int64), history_liked=tf.constant([1, 1], tf.int64),
                 history_age_days=tf.constant([0, 0], tf.int64),
                 current_item=tf.constant(3, tf.int64), candidates=tf.constant([5, 2, new_item], tf.int64),
                 user_id=tf.constant(0, tf.int64))
  for served, signature, inputs, scored_by in (
      (plain, "rank", {}, "fallback"),
      (with_content, "rank_with_embeddings", {"candidate_embeddings": tf.constant(embeddings)}, "content")):
    assert [s.decode() for s in served.outputs["scored_by"].string_val] == ["catalog", "catalog", scored_by]
    np.testing.assert_array_equal(tf.make_ndarray(served.outputs["scores"]),
                                  ranker.signatures[signature](**request, **inputs)["scores"].numpy())

  # Recommend over the whole catalog: every item but the history (k beyond the catalog), item 6 included, which
  # got its SID in span 2's run; each scored as the newest pushed ranker scores it, item 6 through its content.
  items = tf.make_ndarray(recommended.outputs["items"])
  assert sorted(items.tolist()) == [2, 4, 5, 6]
  assert outputs["RecommenderPusher"]["pushed_model"].custom_properties["ranking_version"].int_value == versions[-1]
  content_ids, content = item_embeddings.load(
      summary.as_artifact(outputs["NewItemEmbedder"]["embeddings"], artifacts.ItemEmbeddings))
  ranked = ranker.signatures["rank_with_embeddings"](
      history=tf.constant([1, 3], tf.int64), history_liked=tf.constant([1, 1], tf.int64),
      history_age_days=tf.constant([0, 0], tf.int64), current_item=tf.constant(3, tf.int64),
      candidates=tf.constant(items), user_id=tf.constant(1, tf.int64),
      candidate_embeddings=tf.constant(content[np.searchsorted(content_ids, items)]))
  np.testing.assert_allclose(tf.make_ndarray(recommended.outputs["ranking_scores"]), ranked["scores"].numpy(),
                             rtol=1e-6)
  assert [s.decode() for s in recommended.outputs["scored_by"].string_val][items.tolist().index(6)] == "content"

  # Span 3 with an unreachable AUC floor: not blessed, not pushed; the served versions stay.
  third = daily_run.run_span(loop.replace(min_auc=1.01), D3)
  assert third["blessed"] is False and "pushed_version" not in third
  assert sorted(int(v) for v in os.listdir(loop.serving_model_dir) if v.isdigit()) == versions


def test_a_remap_refresh_mid_loop_maps_the_latest_model_and_the_next_daily_run_continues_from_it(loop, tmp_path):
  # On a copy of the loop's outputs (with or without the daily runs of the test above), the main command again
  # with a later start: the SID refresh learns from everything before span 2 (stable codes, remap warm start);
  # then the daily run of span 2.
  root = pathlib.Path(loop.output_root).parent
  output = tmp_path / "remap"
  shutil.copytree(loop.output_root, output)
  (tmp_path / "remap.json").write_text(json.dumps({**TINY, "rqvae_warm_start": True, "refresh_warm_start": "remap"}))
  store = runs.store(loop.replace(output_root=str(output)))
  # The previous models: the latest of a span before span 2 (the daily runs of spans 2 and 3 may have run).
  latest, latest_retrieval = (max((m for m, _ in summary.output_history(store, loop.pipeline_name, node, "model")
                                   if m.custom_properties["span"].int_value < D2), key=lambda m: m.id)
                              for node in ("RankingTrainer", "RetrievalTrainer"))
  args = _main_args(root, "unused")
  args[args.index("--output_root") + 1] = str(output)
  args[args.index("--start_date") + 1] = "2038-01-03"
  args[args.index("--config") + 1] = str(tmp_path / "remap.json")
  assert local_runner.main(args) == 0  # the refresh only: span 2 may have run already in the copied outputs
  config = runs.load_config(str(output))
  assert (config.start_date, config.refresh_warm_start, config.rqvae_warm_start) == ("2038-01-03", "remap", True)
  store = runs.store(config)
  history = lambda key: summary.output_history(store, config.pipeline_name, "RankingTrainer", key)
  [(remapped, execution)] = [(model, execution) for model, execution in history("model")
                             if model.custom_properties["span"].int_value == D1 and model.id > latest.id]
  [run] = [run for run, produced_by in history("model_run") if produced_by.id == execution.id]
  step = _json(os.path.join(run.uri, ranking_trainer.METRICS_FILE))
  assert step["warm_started_from"] == path_utils.serving_model_path(latest.uri)
  assert step["remapped"]["rows"] > 0 and step["train_examples"] == 10 and step["epochs"] == 1
  # The retrieval model too: the latest one, its tokens fitted to the refresh's SIDs.
  refreshed = summary.latest_node_outputs(store, config.pipeline_name)
  retrieval = _json(os.path.join(refreshed["RetrievalTrainer"]["model_run"].uri, ranking_trainer.METRICS_FILE))
  assert retrieval["warm_started_from"] == path_utils.serving_model_path(latest_retrieval.uri)
  assert retrieval["remapped"]["items"] > 0 and retrieval["epochs"] == 1
  rqvae = refreshed["RQVAETrainer"]["model"]
  # Stable codes: the RQ-VAE started from the one that made the previous ranker's SIDs, and the quality report
  # says what changed since those.
  previous_sids = _input_of(store, latest, "semantic_ids")
  assert rqvae.custom_properties[rqvae_executor.WARM_STARTED_FROM].string_value == \
      _input_of(store, latest, "sid_encoder").uri
  report = refreshed["SidQualityReport"]["report"]
  changes = _json(os.path.join(report.uri, report_executor.REPORT_JSON))[report_executor.CHANGES]
  old_ids, old_codes, _ = semantic_ids.load(summary.as_artifact(previous_sids, artifacts.SemanticIds))
  new_ids, new_codes, _ = semantic_ids.load(summary.as_artifact(refreshed["SemanticIdAssigner"]["semantic_ids"],
                                                                artifacts.SemanticIds))
  both = np.isin(new_ids, old_ids)
  assert (changes["items_in_both"], changes["items_new"]) == (both.sum(), (~both).sum()) and both.sum() >= 4
  rows = np.searchsorted(old_ids, new_ids[both])
  assert changes["changed_share"] == (old_codes[rows] != new_codes[both]).mean(0).tolist()
  assert report.custom_properties["sid_changed_share"].double_value == changes["sid_changed_share"]
  # The daily run of span 2 resolved the remapped model (span 1: the refresh's backfill ends there): it is the
  # one evaluated on span 2 and trained on.
  second = daily_run.run_span(config, D2)
  assert second["evaluated_model"]["id"] == remapped.id and second["evaluated_model"]["span"] == D1
  # So did its retrieval step: it continued from the refresh's remapped retrieval model.
  daily = summary.latest_node_outputs(store, config.pipeline_name)["RetrievalTrainer"]
  assert _json(os.path.join(daily["model_run"].uri, ranking_trainer.METRICS_FILE))["warm_started_from"] == \
      path_utils.serving_model_path(refreshed["RetrievalTrainer"]["model"].uri)


def test_daily_run_refuses_spans_it_cannot_run(loop, capsys):
  assert daily_run.main(["--output_root", loop.output_root, "--span", str(D3 + 5)]) == 2
  assert f"no input for day span {D3 + 5} (2038-01-09) under {loop.input_base}: it holds spans {D1} " \
      f"(2038-01-02) .. {D3} (2038-01-04)" in capsys.readouterr().err
  assert daily_run.main(["--output_root", loop.output_root, "--date", "2037-12-01"]) == 2
  assert "before the loop's first span" in capsys.readouterr().err
