"""Request metrics in Prometheus' text format, like TF Serving's monitoring (--monitoring_config_file with a
prometheus_config): a request count and a latency histogram per model, version, signature, API and status.

Example:
  metrics = Metrics()
  metrics.observe("sid_ranking", 3, "rank", "Predict", "OK", seconds=0.004)
  metrics.render()   # ':tensorflow:serving:request_count{model_name="sid_ranking",...} 1' ...
"""

import bisect
import re
import threading
from typing import Dict, Optional, Tuple

COUNT = ":tensorflow:serving:request_count"
LATENCY = ":tensorflow:serving:request_latency"
# Microseconds, as TF Serving's request_latency.
BUCKETS = (100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
           2_500_000, 10_000_000)
LABELS = ("model_name", "model_version", "signature_name", "API", "status")
DEFAULT_PATH = "/monitoring/prometheus/metrics"

Key = Tuple[str, ...]


class Metrics:
  """Thread-safe counters; `render` writes them for a Prometheus scrape."""

  def __init__(self):
    self._lock = threading.Lock()
    self._counts: Dict[Key, int] = {}
    self._buckets: Dict[Key, list] = {}
    self._sums: Dict[Key, float] = {}

  def observe(self, model_name: str, version: Optional[int], signature_name: str, api: str, status: str,
              seconds: float) -> None:
    key = (model_name, "" if version is None else str(version), signature_name, api, status)
    micros = seconds * 1e6
    with self._lock:
      self._counts[key] = self._counts.get(key, 0) + 1
      buckets = self._buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
      buckets[bisect.bisect_left(BUCKETS, micros)] += 1
      self._sums[key] = self._sums.get(key, 0.0) + micros

  def render(self) -> str:
    with self._lock:
      counts, buckets, sums = dict(self._counts), {k: list(v) for k, v in self._buckets.items()}, dict(self._sums)
    lines = [f"# TYPE {COUNT} counter"]
    lines += [f"{COUNT}{{{_labels(key)}}} {count}" for key, count in sorted(counts.items())]
    lines.append(f"# TYPE {LATENCY} histogram")
    for key in sorted(buckets):
      cumulative = 0
      for bound, count in zip(BUCKETS + (float("inf"),), buckets[key]):
        cumulative += count
        le = "+Inf" if bound == float("inf") else str(bound)
        lines.append(f'{LATENCY}_bucket{{{_labels(key)},le="{le}"}} {cumulative}')
      lines.append(f"{LATENCY}_sum{{{_labels(key)}}} {sums[key]:.1f}")
      lines.append(f"{LATENCY}_count{{{_labels(key)}}} {cumulative}")
    return "\n".join(lines) + "\n"


def _labels(key: Key) -> str:
  return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(LABELS, key))


def _escape(value: str) -> str:
  return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_path(monitoring_config: str) -> Optional[str]:
  """The scrape path a MonitoringConfig text proto enables (`prometheus_config { enable: true path: ... }`),
  or None. Only prometheus_config is read: it is all TF Serving's monitoring config holds."""
  config = re.search(r"prometheus_config\s*:?\s*\{([^}]*)\}", monitoring_config)
  if not config or not re.search(r"\benable\s*:\s*true\b", config.group(1)):
    return None
  path = re.search(r'\bpath\s*:\s*"([^"]*)"', config.group(1))
  return path.group(1) if path and path.group(1) else DEFAULT_PATH
