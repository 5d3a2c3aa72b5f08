"""bench/scale.py's table: each stage's figures beside their ratio to the first factor's."""

from bench import scale


def _result(factor, refresh_seconds, peak):
  return {"factor": factor, "ratings": 100 * factor, "log": "x.log", "pipeline_seconds": 10.0 * factor,
          "returncode": 0,
          "refresh": {"seconds": refresh_seconds, "interactions": 70 * factor, "peak_rss_mb": peak,
                      "components": {"SpanExampleGen": {"seconds": refresh_seconds / 2, "cached": False},
                                     "Pusher": {"seconds": 0.1, "cached": False}}},
          "daily": [{"span": 5, "seconds": 1.0, "process_seconds": 2.0, "interactions": 3 * factor,
                     "peak_rss_mb": 100.0}]}


def test_each_stage_shows_its_ratio_to_the_first_factor():
  lines = scale.table(scale.rows([_result(1, 4.0, 1000.0), _result(10, 20.0, 1500.0),
                                  {"factor": 100, "returncode": 1, "log": "x100.log"}]))
  assert lines[2:] == [
      "| x1 | pipeline part | 100 | 10.0 | 10 |  |",
      "| x1 | SID refresh | 70 | 4.0 | 18 | 1,000 |",
      "| x1 | refresh SpanExampleGen | 70 | 2.0 | 35 |  |",
      "| x1 | daily span 5 | 3 | 2.0 | 2 | 100 |",
      "| x10 | pipeline part | 1,000 | 100.0 (10.00x) | 10 (1.00x) |  |",
      "| x10 | SID refresh | 700 | 20.0 (5.00x) | 35 (2.00x) | 1,500 (1.50x) |",
      "| x10 | refresh SpanExampleGen | 700 | 10.0 (5.00x) | 70 (2.00x) |  |",
      "| x10 | daily span 5 | 30 | 2.0 (1.00x) | 15 (10.00x) | 100 (1.00x) |",
      "| x100 | failed (exit 1, x100.log) | | | | |"]
