"""The replay: one process per span, resumed after a kill without repeating a recorded span, and its report."""

import json
import os

import pytest

from formats.errors import InputDataError
from pipeline import configs, daily_run, replay


@pytest.fixture
def config(tmp_path):
  for span in (100, 101, 102, 103):
    os.makedirs(tmp_path / "input" / f"span-{span}")
  os.makedirs(tmp_path / "input" / "backfill")
  # Span 100 is 1970-04-11 in day spans: the loop starts at span 101.
  return configs.PipelineConfig(input_base=str(tmp_path / "input"), output_root=str(tmp_path / "out"),
                                span_period="day", start_date="1970-04-12")


def _fake_runs(config, killed_at=None):
  """Stands in for `python -m pipeline.daily_run`: records the span as the real one does, last; a
  'killed' span exits before recording."""
  started = []

  def run(output_root, span):
    started.append(span)
    if span == killed_at:
      return {"returncode": -9, "process_seconds": 1.0}
    path = daily_run.record_path(output_root, span)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
      json.dump({"span": span, "date": "d", "seconds": 2.0, "interactions": span, "new_items": 1,
                 "tfma": {"overall": {"auc": 0.6}}, "trainer_scored": {
                     "item_like_rate": {"overall": {"auc": 0.55}},
                     "sid_staleness": {"stale": {"auc": 0.61, "examples": 7}, "refreshed": {"auc": 0.7}}},
                 "blessed": True, "pushed_version": str(span),
                 "retrieval": {"candidate": {"overall": {"recall@5": 0.1, "ndcg@5": 0.05, "recall@10": 0.2,
                                                         "ndcg@10": 0.08}, "new_items": {"recall@10": 0.0}},
                               "baseline": {}, "blessed": False,
                               "served": {"version": 1, "recommend": {"examples": 4, "recall@10": 0.25},
                                          "retrieve": {"examples": 4, "recall@10": 0.5}}},
                 "retrieval_pushed_version": "", "recommend_pushed_version": str(span + 1),
                 "peak_rss_mb": 500.0 + span}, f)
    return {"returncode": 0, "process_seconds": 3.0}
  return run, started


def test_a_killed_replay_resumes_at_the_killed_span_and_repeats_no_recorded_one(config, monkeypatch):
  span_list = replay.spans_to_run(config, None, None, None)
  assert span_list == [101, 102, 103]
  run, started = _fake_runs(config, killed_at=102)
  monkeypatch.setattr(replay, "_run_in_process", run)
  with pytest.raises(RuntimeError, match="the daily run of span 102 failed"):
    replay.replay(config, span_list)
  assert started == [101, 102]

  run, started = _fake_runs(config)
  monkeypatch.setattr(replay, "_run_in_process", run)
  records = replay.replay(config, span_list)
  assert started == [102, 103]
  assert [(r["span"], r["peak_rss_mb"], r["process_seconds"]) for r in records] == [
      (101, 601.0, 3.0), (102, 602.0, 3.0), (103, 603.0, 3.0)]
  report = replay.write_report(config, records)
  table = open(report).read().splitlines()
  assert "| 2 | 103 | d | 103 | 1 | 3.0 | 603.0 | 0.600 | 0.550 | n/a | n/a | 7 | 0.610 | 0.700 | yes | 103 |" in table
  assert table[-1] == ("| 2 | 103 | 0.1000 | 0.0500 | 0.2000 | 0.0800 | 0.0000 | n/a | no |  | 4 | 0.2500 | 0.5000 "
                       "| 104 |")
  assert sorted(os.listdir(os.path.dirname(report))) == ["report.json", "report.md", "report.png"]


def test_span_selection(config):
  assert replay.spans_to_run(config, 102, None, None) == [102, 103]
  assert replay.spans_to_run(config, None, 102, None) == [101, 102]
  assert replay.spans_to_run(config, None, None, 0) == []
  run, _ = _fake_runs(config)
  run(config.output_root, 101)  # Recorded: the next span to run is 102.
  assert replay.spans_to_run(config, None, None, 1, pending=True) == [102]
  assert replay.spans_to_run(config, None, None, 1) == [101]
  with pytest.raises(InputDataError, match="holds no span from 1970-05-01 on"):
    replay.spans_to_run(config.replace(start_date="1970-05-01"), None, None, None)


def test_a_span_without_interactions_is_recorded_as_skipped(config):
  for span in (101, 102):
    (open(os.path.join(config.input_base, f"span-{span}", "ratings.csv"), "w")
     .write("userId,movieId,rating,timestamp\n"))
  record = daily_run.run_span(config, 102)
  assert (record["span"], record["interactions"], record["skipped"]) == (102, 0, "no interactions")
  assert json.load(open(daily_run.record_path(config.output_root, 102))) == record
  with pytest.raises(InputDataError, match="span 100 .1970-04-11. is before the loop's first span 101"):
    daily_run.run_span(config, 100)
