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


def test_the_prometheus_path_of_a_monitoring_config():
  assert metrics.prometheus_path('prometheus_config {\n  enable: true,\n  path: "/m/metrics"\n}') == "/m/metrics"
  assert metrics.prometheus_path("prometheus_config { enable: true }") == metrics.DEFAULT_PATH
  assert metrics.prometheus_path("prometheus_config { enable: false }") is None
  assert metrics.prometheus_path("") is None
