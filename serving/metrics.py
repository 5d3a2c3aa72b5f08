"""Request metrics in Prometheus' text format, like TF Serving's monitoring (--monitoring_config_file with a
prometheus_config): a request count and a latency histogram per model, version, signature, API and status.

Example:
  metrics = Metrics()
  metrics.observe("sid_ranking", 3, "rank", "Predict", "OK", seconds=0.004)
  metrics.render()   # ':tensorflow:serving:request_count{model_name="sid_ranking",...} 1' ...

Several server processes sharing a port (--server_processes) share a directory: each publishes its own
counters there (`publish`, every second), and a scrape answered by any of them sums all processes'.
"""

import bisect
import json
import os
import re
import threading
import time
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
  """Thread-safe counters; `render` writes them for a Prometheus scrape. With `shared_dir`, the counters of
  the other processes publishing there (as `process`) are added in."""

  def __init__(self, shared_dir: Optional[str] = None, process: int = 0):
    self._lock = threading.Lock()
    self._counts: Dict[Key, int] = {}
    self._buckets: Dict[Key, list] = {}
    self._sums: Dict[Key, float] = {}
    self._shared_dir, self._process = shared_dir, process

  def observe(self, model_name: str, version: Optional[int], signature_name: str, api: str, status: str,
              seconds: float) -> None:
    key = (model_name, "" if version is None else str(version), signature_name, api, status)
    micros = seconds * 1e6
    with self._lock:
      self._counts[key] = self._counts.get(key, 0) + 1
      buckets = self._buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
      buckets[bisect.bisect_left(BUCKETS, micros)] += 1
      self._sums[key] = self._sums.get(key, 0.0) + micros

  def _snapshot(self) -> Tuple[Dict[Key, int], Dict[Key, list], Dict[Key, float]]:
    with self._lock:
      return dict(self._counts), {k: list(v) for k, v in self._buckets.items()}, dict(self._sums)

  def _path(self, process: int) -> str:
    return os.path.join(self._shared_dir, f"process-{process}.json")

  def publish(self) -> None:
    """Writes this process's counters to the shared directory (atomically: a reader never sees half)."""
    counts, buckets, sums = self._snapshot()
    rows = [[list(key), counts[key], buckets[key], sums[key]] for key in counts]
    staging = self._path(self._process) + ".tmp"
    with open(staging, "w") as f:
      json.dump(rows, f)
    os.replace(staging, self._path(self._process))

  def start_publishing(self, interval_seconds: float = 1.0) -> None:
    """Publishes every `interval_seconds` from a daemon thread (the process's counters are then at most
    that old in another process's scrape)."""
    def publish_forever():
      while True:
        self.publish()
        time.sleep(interval_seconds)
    threading.Thread(target=publish_forever, name="metrics-publisher", daemon=True).start()

  def _all_processes(self) -> Tuple[Dict[Key, int], Dict[Key, list], Dict[Key, float]]:
    counts, buckets, sums = self._snapshot()
    if self._shared_dir is None:
      return counts, buckets, sums
    for name in sorted(os.listdir(self._shared_dir)):
      if not name.endswith(".json") or name == os.path.basename(self._path(self._process)):
        continue
      with open(os.path.join(self._shared_dir, name)) as f:
        for key, count, histogram, total in json.load(f):
          key = tuple(key)
          counts[key] = counts.get(key, 0) + count
          buckets[key] = [a + b for a, b in zip(buckets.get(key, [0] * len(histogram)), histogram)]
          sums[key] = sums.get(key, 0.0) + total
    return counts, buckets, sums

  def render(self) -> str:
    counts, buckets, sums = self._all_processes()
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
