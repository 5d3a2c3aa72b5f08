"""Kubeflow Pipelines: compiling the two pipelines (runner.py) and scheduling the daily one (schedule.py)."""

# The daily spec's runtime parameter: the span to ingest, as a RangeConfig JSON that the example-gen
# driver reads at run time. Empty, its default, means the latest span present when the run starts.
SPAN_PARAMETER = "range_config"
LATEST_SPAN = ""
