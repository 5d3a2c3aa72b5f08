"""SpanExampleGen: span-by-span ingestion equals one run over everything, without leakage."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from tfx import v1 as tfx
from tfx.components.example_gen import driver
from tfx.orchestration import data_types
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
from tfx.types import artifact_utils, standard_artifacts

import conftest
from components.span_example_gen import component, executor
from formats import artifacts, feature_state, spans
from formats import interaction_features as fields
from formats.errors import InputDataError
from models.ranking import model as ranking
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from pipeline import configs

S = spans.span_of(conftest.DAY0, "day")  # 2018-01-01
D = conftest.DAY
T2, T3, T4 = (conftest.DAY0 + k * D for k in (2, 3, 4))
FIRST_DAILY_DATE = "2018-01-03"  # Span S + 2: the backfill holds S and S + 1.
HISTORY_LENGTH = 3

# The partitioned input: directory -> (ratings, movies, tags) rows, in file order. User 1 rates in
# every span (6 items, history_length 3); the same-second ties at T2 + 7 are within user 3 and
# within item 4; span S + 4 re-lists the known movie 2 (a daily dump of the catalog) and tags it.
PARTS = {
    "backfill": ([f"1,1,4.0,{conftest.DAY0}", f"1,2,3.0,{conftest.DAY0 + 1}",
                  f"2,1,5.0,{conftest.DAY0 + 10}", f"1,3,2.0,{conftest.DAY0 + D}",
                  f"2,2,4.5,{conftest.DAY0 + D + 5}"],
                 ["1,Toy Story (1995),Adventure|Animation", '2,"Heat, The (1995)",Action|Crime',
                  "3,No Genres Movie,(no genres listed)", "6,Never Rated (2000),Drama"],
                 [f"1,1,Pixar,{conftest.DAY0}"]),
    f"span-{S + 2}": ([f"3,2,4.0,{T2 + 7}", f"1,4,5.0,{T2 + 7}", f"3,1,1.0,{T2 + 7}",
                       f"2,4,3.5,{T2 + 7}"],
                      ["4,Four (2001),Drama"], []),
    f"span-{S + 3}": ([f"1,5,4.0,{T3 + 1}", f"3,5,2.5,{T3 + 2}"],
                      ["5,Five (2002),Comedy"], [f"1,5,Funny,{T3}"]),
    f"span-{S + 4}": ([f"4,5,5.0,{T4}", f"1,7,3.0,{T4 + 3}", f"2,5,4.0,{T4 + 3}"],
                      ['2,"Heat, The (1995)",Action|Crime', "7,Seven (2003),Drama"],
                      [f"4,2,heist,{T4}"]),
}
DAILY = [S + 2, S + 3, S + 4]
ALL_RATINGS = [r for ratings, _, _ in PARTS.values() for r in ratings]
AFTER_LAST = "2018-01-06"  # The backfill-mode run over everything ends after the last rating.


def _write(path, ratings, movies, tags) -> str:
  text = lambda name, lines: "".join(line + "\n" for line in [",".join(executor.HEADERS[name]), *lines])
  return conftest.write_movielens(path, movies=text(executor.MOVIES, movies),
                                  ratings=text(executor.RATINGS, ratings), tags=text(executor.TAGS, tags))


def _write_partitioned(base, parts=None) -> str:
  for name, (ratings, movies, tags) in (parts or PARTS).items():
    _write(base / name, ratings, movies, tags)
  return str(base)


def _write_as_backfill(base, ratings) -> str:
  """Everything in one backfill directory: every movie once, every tag."""
  movies = {m.split(",")[0]: m for _, part_movies, _ in PARTS.values() for m in part_movies}
  tags = [t for _, _, part_tags in PARTS.values() for t in part_tags]
  _write(base / component.BACKFILL_PATTERN, ratings, movies.values(), tags)
  return str(base)



def _ingest(input_base, out_dir, span=None, previous=None, end_date=None, **props):
  return conftest.run_span_example_gen(input_base, out_dir, span, previous, end_date,
                                       history_length=HISTORY_LENGTH, **props)


def _records(artifact, split):
  files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*"))
  return [tf.train.Example.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _as_dict(example):
  return {name: list(f.int64_list.value or f.float_list.value or f.bytes_list.value)
          for name, f in sorted(example.features.feature.items())}


def _interactions(outputs):
  """Interactions as sorted {feature: values} dicts, keyed by (user, item)."""
  return {(e["user_id"][0], e["item_id"][0]): e for e in map(
      _as_dict, _records(outputs["examples"], executor.INTERACTIONS_SPLIT))}


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
  """The backfill then each daily span on the previous run's state: [(outputs, report)]."""
  tmp = tmp_path_factory.mktemp("daily")
  base = _write_partitioned(tmp / "input")
  runs = [_ingest(base, tmp / "backfill", end_date=FIRST_DAILY_DATE)]
  for span in DAILY:
    runs.append(_ingest(base, tmp / str(span), span=span, previous=runs[-1][0]["state"]))
  return runs


@pytest.fixture(scope="module")
def all_at_once(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("all")
  return _ingest(_write_as_backfill(tmp / "input", ALL_RATINGS), tmp / "out", end_date=AFTER_LAST)


def test_span_by_span_equals_one_run_over_everything(daily, all_at_once):
  by_span = {}
  for outputs, _ in daily:
    by_span.update(_interactions(outputs))
  everything = _interactions(all_at_once[0])
  assert len(everything) == len(ALL_RATINGS) == 14
  assert sorted(by_span.items()) == sorted(everything.items())
  last_state, state_of_all = daily[-1][0]["state"], all_at_once[0]["state"]
  assert feature_state.read_users(last_state) == feature_state.read_users(state_of_all)
  assert feature_state.read_items(last_state) == feature_state.read_items(state_of_all)


def test_a_backfill_in_chunks_equals_one_pipeline_over_it(tmp_path):
  # Ratings per span: S 3, S+1 2, S+2 5 (one of an unknown item), S+3 2, S+4 3, so chunks of at most 4
  # hold one span each; the bad rows (2 unparsable, 1 after end_date) are reported once, from chunk 0.
  bad = [f"1,99,4.0,{T2 + 8}", "3,3,4.0,yesterday", f"3,3,9.0,{T3}", f"4,1,4.0,{T4 + 2 * D}"]
  base = _write_as_backfill(tmp_path / "input", ALL_RATINGS + bad)
  (whole, whole_report), (chunked, chunked_report) = (
      _ingest(base, tmp_path / f"out{limit}", end_date=AFTER_LAST, backfill_chunk_interactions=limit)
      for limit in (0, 4))
  assert _interactions(chunked) == _interactions(whole) and len(_interactions(whole)) == 14
  assert feature_state.read_users(chunked["state"]) == feature_state.read_users(whole["state"])
  assert feature_state.read_items(chunked["state"]) == feature_state.read_items(whole["state"])
  kept = ("rows_read", "interactions", "items", "state", "bad_rows")
  assert {k: chunked_report[k] for k in kept} == {k: whole_report[k] for k in kept}
  assert chunked_report["bad_rows"]["total"] == 4 and chunked_report["interactions"]["users"] == 4
  quarantined = lambda out: sorted(open(out["report"].uri + "/" + executor.QUARANTINE_FILE))
  assert quarantined(chunked) == quarantined(whole) and len(quarantined(whole)) == 4
  # An item is new, with its tags, where it is first rated; its num_ratings counts that chunk's ratings.
  items = lambda out: {e["item_id"][0]: e for e in map(_as_dict, _records(out["items"], "items"))}
  num_ratings = lambda out: {item: e.pop("num_ratings") for item, e in items(out).items()}
  assert num_ratings(whole) == {1: [3], 2: [3], 3: [1], 4: [2], 5: [4], 6: [0], 7: [1]}
  assert num_ratings(chunked) == {1: [2], 2: [1], 3: [1], 4: [2], 5: [2], 6: [0], 7: [1]}
  without_num_ratings = lambda out: {i: {k: v for k, v in e.items() if k != "num_ratings"}
                                     for i, e in items(out).items()}
  assert without_num_ratings(chunked) == without_num_ratings(whole)
  assert sorted({os.path.basename(f).rsplit("-", 3)[0] for f in tf.io.gfile.glob(
      artifact_utils.get_split_uri([chunked["examples"]], "interactions") + "/*")}) == [
          f"data-chunk{i:05d}" for i in range(5)]
  assert not tf.io.gfile.exists(os.path.join(chunked["report"].uri, executor.SCRATCH_DIR))


def _decayed(rated, at: int):
  """The decayed (count, liked) at `at` of (timestamp, liked) ratings: each weighs 2 ** -(age / 30 days)."""
  weights = [(2.0 ** (-(at - t) / (30 * D)), liked) for t, liked in rated]
  return sum(w for w, _ in weights), sum(w for w, liked in weights if liked)


def test_features_continue_from_the_state(daily):
  span4 = _interactions(daily[-1][0])
  # User 1's 6th item: history capped at 3; counters over their 5 earlier ratings (4, 3, 2, 5, 4); the
  # history's ages in whole days, its first item from the backfill's state (rated at DAY0 + D); the decayed
  # counters over the same 5, through three states.
  user_rated = [(conftest.DAY0, 1), (conftest.DAY0 + 1, 0), (conftest.DAY0 + D, 0), (T2 + 7, 1), (T3 + 1, 1)]
  decayed = {k: span4[(1, 7)].pop(k) for k in list(span4[(1, 7)]) if "decayed" in k}
  np.testing.assert_allclose([decayed["user_decayed_count"], decayed["user_decayed_liked"]],
                             [[v] for v in _decayed(user_rated, T4 + 3)], rtol=1e-6)
  assert decayed["item_decayed_count"] == decayed["item_decayed_liked"] == [0.0]
  assert span4[(1, 7)] == {
      "current_item": [5], "history": [3, 4, 5], "history_liked": [0, 1, 1], "history_age_days": [3, 1, 1],
      "item_first_seen_span": [S + 4],
      "item_id": [7],
      "item_prior_count_all": [0], "item_prior_interactions": [0], "item_prior_liked": [0],
      "item_prior_rating_sum": [0.0], "item_segment": [b"cold_start"], "liked": [0], "rating": [3.0],
      "span": [S + 4], "timestamp": [T4 + 3], "user_id": [1], "user_prior_interactions": [5],
      "user_prior_liked": [3], "user_prior_rating_sum": [18.0]}
  # Item 5: 2 ratings in span S + 3 and user 4's earlier today, 2 of the 3 liked.
  assert {k: span4[(2, 5)][k] for k in ("history", "item_first_seen_span", "item_prior_interactions",
                                        "item_prior_count_all", "item_prior_liked",
                                        "item_prior_rating_sum", "item_segment")} == {
      "history": [1, 2, 4], "item_first_seen_span": [S + 3], "item_prior_interactions": [2],
      "item_prior_count_all": [3], "item_prior_liked": [2], "item_prior_rating_sum": [11.5],
      "item_segment": [b"long_tail"]}
  np.testing.assert_allclose([span4[(2, 5)]["item_decayed_count"], span4[(2, 5)]["item_decayed_liked"]],
                             [[v] for v in _decayed([(T3 + 1, 1), (T3 + 2, 0), (T4, 1)], T4 + 3)], rtol=1e-6)
  span2 = _interactions(daily[1][0])
  # Same second: file order, within the user (3) and within the item (4).
  assert span2[(3, 1)]["history"] == [2] and span2[(3, 1)]["user_prior_rating_sum"] == [4.0]
  assert span2[(3, 1)]["item_prior_interactions"] == span2[(3, 1)]["item_prior_count_all"] == [2]
  assert span2[(2, 4)]["item_prior_count_all"] == [1] and span2[(2, 4)]["item_prior_liked"] == [1]
  assert span2[(1, 4)]["item_prior_count_all"] == [0]


def test_state_report_and_new_items_of_a_span(daily):
  outputs, report = daily[-1]
  assert feature_state.span_of(outputs["state"]) == S + 4
  assert outputs["state"].get_string_custom_property("previous_state_uri") == daily[-2][0]["state"].uri
  assert outputs["examples"].span == S + 4
  assert artifact_utils.decode_split_names(outputs["examples"].split_names) == ["interactions"]
  users = feature_state.read_users(outputs["state"])
  user_rated = [(conftest.DAY0, 1), (conftest.DAY0 + 1, 0), (conftest.DAY0 + D, 0), (T2 + 7, 1), (T3 + 1, 1),
                (T4 + 3, 0)]
  np.testing.assert_allclose([users[1].decayed_count, users[1].decayed_liked], _decayed(user_rated, T4 + 3),
                             rtol=1e-6)
  assert users[1]._replace(decayed_count=0.0, decayed_liked=0.0) == feature_state.UserState(
      1, (4, 5, 7), T4 + 3, 6, 3, 21.0, recent_liked=(1, 1, 0), recent_timestamps=(T2 + 7, T3 + 1, T4 + 3),
      decayed_at=T4 + 3)
  assert users[3]._replace(decayed_count=0.0, decayed_liked=0.0, decayed_at=0) == feature_state.UserState(
      3, (2, 1, 5), T3 + 2, 3, 1, 7.5, recent_liked=(1, 0, 0),  # Passed through.
      recent_timestamps=(T2 + 7, T2 + 7, T3 + 2))
  items = feature_state.read_items(outputs["state"])
  assert items[6] == feature_state.ItemState(6, -1, 0, 0, 0.0, "Never Rated (2000)")
  assert items[5]._replace(decayed_count=0.0, decayed_liked=0.0) == feature_state.ItemState(
      5, S + 3, 4, 3, 15.5, "Five (2002)", decayed_at=T4 + 3)
  assert [_as_dict(e)["item_id"] for e in _records(outputs["items"], "items")] == [[7]]
  assert {k: report[k] for k in ("span", "span_start", "span_end", "previous_state", "rows_read",
                                 "interactions", "items", "state")} == {
      "span": S + 4, "span_start": "2018-01-05", "span_end": "2018-01-05",
      "previous_state": {"uri": daily[-2][0]["state"].uri, "span": S + 3},
      "rows_read": {"ratings.csv": 3, "movies.csv": 2, "tags.csv": 1},
      "interactions": {"valid": 3, "liked_fraction": 0.6667, "users": 3, "same_second_as_previous": 0,
                       "new_item_interactions": 1},
      "items": {"new": 1, "rated": 1, "never_rated": 0, "no_genres": 0, "no_year_in_title": 0,
                "with_tags": 0, "first_rated": 1, "already_known": 1, "tags_of_known_items": 1},
      "state": {"users": 4, "items": 7}}
  [new_in_span3] = map(_as_dict, _records(daily[-2][0]["items"], "items"))
  assert {k: new_in_span3[k] for k in ("item_id", "tags", "first_seen", "first_seen_span",
                                       "num_ratings")} == {
      "item_id": [5], "tags": [b"funny"], "first_seen": [T3 + 1], "first_seen_span": [S + 3],
      "num_ratings": [2]}
  backfill = daily[0][0]
  assert feature_state.span_of(backfill["state"]) == S + 1 and backfill["examples"].span == S + 1
  assert daily[0][1]["span_start"] is None and daily[0][1]["span_end"] == "2018-01-02"


def test_later_rows_never_change_earlier_examples(tmp_path, all_at_once):
  earlier = _interactions(all_at_once[0])
  later_same_span = [f"3,7,5.0,{T4 + 3}", f"4,1,2.0,{T4 + 60}"]  # Same second as the last, then later.
  later_span = [f"5,1,4.0,{T4 + D}", f"4,7,1.0,{T4 + D + 1}", f"5,2,3.0,{T4 + D + 1}"]
  appended = _interactions(_ingest(
      _write_as_backfill(tmp_path / "appended", ALL_RATINGS + later_same_span + later_span),
      tmp_path / "out_appended", end_date="2018-01-07")[0])
  shuffled = _interactions(_ingest(
      _write_as_backfill(tmp_path / "shuffled", later_span[::-1] + ALL_RATINGS + later_same_span),
      tmp_path / "out_shuffled", end_date="2018-01-07")[0])
  assert len(appended) == len(shuffled) == 19
  assert {k: appended[k] for k in earlier} == {k: shuffled[k] for k in earlier} == earlier
  assert appended[(4, 7)]["item_prior_count_all"] == [2]  # The later rows are counted, after.


def test_bad_rows_of_a_span_name_file_line_and_reason(tmp_path, daily):
  parts = {f"span-{S + 2}": (PARTS[f"span-{S + 2}"][0] + [f"1,99,4.0,{T2 + 8}", f"3,3,4.0,{T3}"],
                             *PARTS[f"span-{S + 2}"][1:])}
  base = _write_partitioned(tmp_path / "input", parts)
  with pytest.raises(InputDataError) as error:
    _ingest(base, tmp_path / "out", previous=daily[0][0]["state"], bad_row_policy="fail")
  assert str(error.value) == (
      f"{base}/span-{S + 2}: 2 bad input rows (bad_row_policy='fail'); first ones:\n"
      f"  ratings.csv:6: movieId 99 absent from movies.csv and the previous state: "
      f"'1,99,4.0,{T2 + 8}'\n"
      f"  ratings.csv:7: timestamp 2018-01-04 outside span {S + 2} (2018-01-03..2018-01-03): "
      f"'3,3,4.0,{T3}'")
  with open(tmp_path / "out" / "report" / executor.QUARANTINE_FILE) as f:
    assert sorted(json.loads(line)["reason"] for line in f) == [
        "movieId 99 absent from movies.csv and the previous state",
        f"timestamp 2018-01-04 outside span {S + 2} (2018-01-03..2018-01-03)"]


def test_previous_state_must_be_an_earlier_span_of_the_same_period(tmp_path, daily):
  base = _write_partitioned(tmp_path / "input")
  later = daily[2][0]["state"]
  with pytest.raises(InputDataError) as error:
    _ingest(base, tmp_path / "a", span=S + 2, previous=later)
  assert str(error.value) == (f"previous_state {later.uri} already includes span {S + 3}; this run "
                              f"ingests span {S + 2}, which must come after it")
  weekly = artifacts.FeatureState()
  weekly.uri = str(tmp_path / "weekly")
  feature_state.set_properties(weekly, spans.span_of(conftest.DAY0, "week"), "week", "", 30.0)
  with pytest.raises(InputDataError) as error:
    _ingest(base, tmp_path / "b", span=S + 2, previous=weekly)
  assert str(error.value) == (f"previous_state {weekly.uri} holds week spans (up to span 2504) but "
                              f"this run ingests day span {S + 2}")
  backfill = daily[0][0]["state"]
  with pytest.raises(InputDataError) as error:
    _ingest(base, tmp_path / "c", span=S + 2, previous=backfill, counter_half_life_days=7.0)
  assert str(error.value) == (f"previous_state {backfill.uri} holds decayed counters with a half-life of 30 "
                              f"days but this run's counter_half_life_days is 7; run a SID refresh to ingest "
                              f"everything again with it")


def test_an_empty_span_writes_an_empty_split_and_passes_the_state_on(tmp_path, daily):
  base = _write_partitioned(tmp_path / "input", {f"span-{S + 5}": ([], [], [])})
  outputs, report = _ingest(base, tmp_path / "out", previous=daily[-1][0]["state"])
  assert _records(outputs["examples"], "interactions") == []
  assert tf.io.gfile.listdir(artifact_utils.get_split_uri([outputs["examples"]], "interactions"))
  assert feature_state.span_of(outputs["state"]) == S + 5
  previous = daily[-1][0]["state"]
  assert feature_state.read_users(outputs["state"]) == feature_state.read_users(previous)
  assert feature_state.read_items(outputs["state"]) == feature_state.read_items(previous)
  assert report["interactions"]["valid"] == 0 and report["bad_rows"]["total"] == 0


def test_arguments_are_checked_when_the_pipeline_is_built():
  with pytest.raises(ValueError, match="span_period must be one of"):
    component.SpanExampleGen(input_base="x", span_period="year")
  with pytest.raises(ValueError, match="a backfill needs end_date"):
    component.SpanExampleGen(input_base="x", span_period="day", span_pattern="backfill")
  with pytest.raises(ValueError, match="end_date is for the backfill only"):
    component.SpanExampleGen(input_base="x", span_period="day", end_date="2018-01-01")
  with pytest.raises(ValueError, match=r"end_date 2018-01-03 must start a month span .*2018-01-01"):
    component.SpanExampleGen(input_base="x", span_period="month", span_pattern="backfill",
                             end_date="2018-01-03")


def test_driver_resolves_the_latest_span_and_fingerprints_its_files(tmp_path):
  base = _write_partitioned(tmp_path, {"span-17000": ([], [], []), "span-17001": ([], [], [])})
  gen = component.SpanExampleGen(input_base=base, span_period="day")

  def resolve():
    return driver.FileBasedDriver(None).resolve_exec_properties(dict(gen.exec_properties), None, None)

  resolved = resolve()
  assert resolved["span"] == 17001
  assert executor.input_paths(resolved) == {
      name: f"{base}/span-17001/{file_name}" for name, file_name in executor.FILES.items()}
  with open(tmp_path / "span-17000" / "ratings.csv", "a") as f:
    f.write(f"1,1,4.0,{17000 * D}\n")
  assert resolve()["input_fingerprint"] == resolved["input_fingerprint"]
  with open(tmp_path / "span-17001" / "ratings.csv", "a") as f:
    f.write(f"1,1,4.0,{17001 * D}\n")
  assert resolve()["input_fingerprint"] != resolved["input_fingerprint"]


def test_runs_under_the_local_dag_runner_and_fingerprints_at_run_time(tmp_path):
  ratings = {S: [f"1,1,4.0,{conftest.DAY0}"], S + 1: [f"1,2,3.0,{conftest.DAY0 + D}"]}
  movies = ["1,Toy Story (1995),Adventure|Animation", '2,"Heat, The (1995)",Action|Crime']
  base = _write_partitioned(tmp_path / "input",
                            {f"span-{s}": (r, movies, []) for s, r in ratings.items()})
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(tmp_path / "mlmd.sqlite"))
  gen = component.SpanExampleGen(input_base=base, span_period="day", max_bad_row_fraction=0.0)
  built = tfx.dsl.Pipeline(
      pipeline_name="span_example_gen", pipeline_root=str(tmp_path / "root"), components=[gen], enable_cache=True,
      metadata_connection_config=connection, beam_pipeline_args=configs.BEAM_PIPELINE_ARGS)
  store = metadata_store.MetadataStore(connection)
  ingested = lambda: sorted((a for a in store.get_artifacts_by_type("Examples") if "/examples/" in a.uri),
                            key=lambda a: a.id)
  tfx.orchestration.LocalDagRunner().run(built)
  [examples] = ingested()
  assert examples.properties["span"].int_value == examples.custom_properties["span"].int_value == S + 1
  fingerprint = examples.custom_properties["input_fingerprint"].string_value
  assert fingerprint.startswith("split:ratings,num_files:1,")
  [state] = store.get_artifacts_by_type(artifacts.FeatureState.TYPE_NAME)
  assert state.custom_properties["span"].int_value == S + 1
  written = standard_artifacts.Examples()
  written.set_mlmd_artifact(examples)
  assert [_as_dict(e)["item_id"] for e in _records(written, "interactions")] == [[2]]

  # The same pipeline object run again: the unchanged span comes from the cache.
  tfx.orchestration.LocalDagRunner().run(built)
  assert [a.id for a in ingested()] == [examples.id]
  # Data changed after the pipeline was built: the driver fingerprints at run time, so no stale cache hit.
  with open(tmp_path / "input" / f"span-{S + 1}" / "ratings.csv", "a") as f:
    f.write(f"2,1,5.0,{conftest.DAY0 + D + 9}\n")
  tfx.orchestration.LocalDagRunner().run(built)
  [_, changed] = ingested()
  assert changed.custom_properties["input_fingerprint"].string_value != fingerprint
  written.set_mlmd_artifact(changed)
  assert sorted(_as_dict(e)["item_id"] for e in _records(written, "interactions")) == [[1], [2]]


def test_compiles_for_kubeflow_v2_with_the_example_gen_driver(tmp_path):
  gen = component.SpanExampleGen(
      input_base="gs://bucket/input", span_period="day",
      range_config=data_types.RuntimeParameter(name="range_config", ptype=str, default=""))
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image="example.com/image"),
      output_dir=str(tmp_path), output_filename="spec.json")
  runner.run(tfx.dsl.Pipeline(pipeline_name="span-example-gen", pipeline_root="gs://bucket/root",
                              components=[gen]))
  with open(tmp_path / "spec.json") as f:
    compiled = json.load(f)
  executors = compiled["pipelineSpec"]["deploymentSpec"]["executors"]
  container = executors["SpanExampleGen_executor"]["container"]
  assert container["lifecycle"]["preCacheCheck"]["command"][-1] == (
      "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver")


def test_later_interactions_change_no_earlier_example_and_the_attention_reads_labels_and_ages_as_ingested(
    tmp_path, all_at_once):
  """The join SpanExampleGen -> ranker: the history (items, labels, ages) an example carries is causal, and
  the history attention receives exactly those labels and ages."""
  earlier = [r for r in ALL_RATINGS if int(r.split(",")[3]) < T4]
  outputs, _ = _ingest(_write_as_backfill(tmp_path / "input", earlier), tmp_path / "out", end_date=AFTER_LAST)
  before, everything = _interactions(outputs), _interactions(all_at_once[0])
  assert len(before) == 11 and {key: everything[key] for key in before} == before

  catalog = Catalog(np.arange(1, 8), np.array([[0, 0], [0, 1], [1, 0], [0, 1], [1, 1], [0, 0], [0, 1]]), 2)
  config = RankingConfig(representation="unigram", history_attention=True, history_ages=True, attention_heads=1,
                         **conftest.SMALL_RANKER)
  model = ranking.build(config, catalog)
  seen = {}
  attend = model.attention.call
  model.attention.call = lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs) or attend(*args, **kwargs)
  example = [e for e in _records(all_at_once[0]["examples"], executor.INTERACTIONS_SPLIT)
             if _as_dict(e)["user_id"] == [1] and _as_dict(e)["item_id"] == [7]]
  model(tf.io.parse_example([example[0].SerializeToString()], fields.TRAINING_SPEC))
  candidate, history_vectors, history_liked = seen["args"]
  assert history_liked.to_list() == [[0, 1, 1]]  # user 1's items 3, 4 and 5, as in the example
  assert seen["kwargs"]["history_age_days"].to_list() == [[3, 1, 1]]
  assert seen["kwargs"]["history_codes"].to_list() == [[[1, 0], [0, 1], [1, 1]]]
  assert seen["kwargs"]["candidate_codes"].numpy().tolist() == [[0, 1]]
