from serving import metrics


def test_counts_and_latency_histogram_in_prometheus_text_format():
  m = metrics.Metrics()
  m.observe("ranker", 3, "rank", "Predict", "OK", seconds=0.0004)
  m.observe("ranker", 3, "rank", "Predict", "OK", seconds=0.003)
  m.observe("ranker", None, "", "GetModelStatus", "NOT_FOUND", seconds=0.00005)
  lines = m.render().splitlines()
  status = 'model_name="ranker",model_version="",signature_name="",API="GetModelStatus",status="NOT_FOUND"'
  rank = 'model_name="ranker",model_version="3",signature_name="rank",API="Predict",status="OK"'
  assert lines[:3] == ["# TYPE :tensorflow:serving:request_count counter",
                       f":tensorflow:serving:request_count{{{status}}} 1",
                       f":tensorflow:serving:request_count{{{rank}}} 2"]
  assert f':tensorflow:serving:request_latency_bucket{{{rank},le="250"}} 0' in lines
  assert f':tensorflow:serving:request_latency_bucket{{{rank},le="500"}} 1' in lines
  assert f':tensorflow:serving:request_latency_bucket{{{rank},le="5000"}} 2' in lines
  assert f':tensorflow:serving:request_latency_bucket{{{rank},le="+Inf"}} 2' in lines
  assert f":tensorflow:serving:request_latency_sum{{{rank}}} 3400.0" in lines
  assert f":tensorflow:serving:request_latency_count{{{rank}}} 2" in lines


def test_processes_sharing_a_directory_each_scrape_the_sum_of_all(tmp_path):
  first, second = metrics.Metrics(str(tmp_path), 0), metrics.Metrics(str(tmp_path), 1)
  first.observe("ranker", 3, "rank", "Predict", "OK", seconds=0.0004)
  second.observe("ranker", 3, "rank", "Predict", "OK", seconds=0.003)
  second.observe("ranker", 3, "rank", "Predict", "INVALID_ARGUMENT", seconds=0.0001)
  rank = 'model_name="ranker",model_version="3",signature_name="rank",API="Predict",status="OK"'
  assert f":tensorflow:serving:request_count{{{rank}}} 1" in first.render().splitlines()  # nothing published yet
  first.publish()
  second.publish()
  for process in (first, second):
    lines = process.render().splitlines()
    assert f":tensorflow:serving:request_count{{{rank}}} 2" in lines
    assert f':tensorflow:serving:request_latency_bucket{{{rank},le="500"}} 1' in lines
    assert f":tensorflow:serving:request_latency_sum{{{rank}}} 3400.0" in lines
    assert f':tensorflow:serving:request_count{{{rank.replace("OK", "INVALID_ARGUMENT")}}} 1' in lines
  first.observe("ranker", 3, "rank", "Predict", "OK", seconds=0.0004)  # live in its own scrape, not yet in the other's
  assert f":tensorflow:serving:request_count{{{rank}}} 3" in first.render().splitlines()
  assert f":tensorflow:serving:request_count{{{rank}}} 2" in second.render().splitlines()


def test_the_prometheus_path_of_a_monitoring_config():
  assert metrics.prometheus_path('prometheus_config {\n  enable: true,\n  path: "/m/metrics"\n}') == "/m/metrics"
  assert metrics.prometheus_path("prometheus_config { enable: true }") == metrics.DEFAULT_PATH
  assert metrics.prometheus_path("prometheus_config { enable: false }") is None
  assert metrics.prometheus_path("") is None
