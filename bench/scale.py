"""How the loop's cost grows with its data: the main command's pipeline part on the bundled data x1, x10, x100.

  .venv/bin/python bench/scale.py [--data_root data/ml-latest-small] [--factors 1 10 100] [--replay_spans 3]
      [--work /tmp/scale] [--output outputs/scale] [--config FILE]

For each factor K: the scaled copy (`python -m pipeline.datasets scaled --factor K`: every user cloned K
times, pipeline/datasets.py; x1 is the data itself), then `python -m pipeline.local_runner` on it in a
process of its own (the SID refresh and --replay_spans daily runs), with the span period and start date
that the first factor's data chose (denser data would get finer spans). Per stage: the components'
seconds (from <output_root>/runs/refresh.json and span-<N>.json), ratings per second, peak memory (the
refresh's and each daily run's process, pipeline/memory.py; per refresh stage, the largest process of
the run sampled twice a second while the stage runs), and every figure's ratio to the first factor's.
Prints a markdown table and writes report.md and report.json to --output. A factor whose run fails is
reported with its log's path.
"""

import argparse
import json
import os
import shutil
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline import datasets, memory, runs

# The stages a row is kept for (the others take seconds at every scale); "pipeline part" is the process.
STAGES = ("SpanExampleGen", "StatisticsGen", "SidVocabBuilder", "SemanticIdAssigner", "RankingTrainer",
          "RetrievalTrainer", "Evaluator", "RetrievalEvaluator")


def _count_rows(path: str) -> int:
  with open(path, "rb") as f:
    return max(sum(1 for _ in f) - 1, 0)


_RUNNING = re.compile(r"> (\S+) running")


def _descendants(pid: int) -> List[int]:
  parents = {}
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat") as f:
          parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        continue
  found, frontier = [pid], [pid]
  while frontier:
    frontier = [child for child, parent in parents.items() if parent in frontier]
    found += frontier
  return found


class StageMemory(threading.Thread):
  """Every `interval` seconds, the resident memory of the largest process of the run (the runner, its Beam
  or Dask workers, its daily runs), charged to the component the run's log says is running ('daily runs'
  once the loop starts): the peak of any process per stage. Linux (/proc) only."""

  def __init__(self, pid: int, log: str, interval: float = 0.5):
    super().__init__(daemon=True)
    self.pid, self.log, self.interval = pid, log, interval
    self.peaks: Dict[str, float] = {}
    self.done = threading.Event()

  def run(self) -> None:
    current = "start-up"
    with open(self.log, errors="replace") as log:
      while not self.done.wait(self.interval):
        for line in log.readlines():
          if match := _RUNNING.search(line):
            current = match.group(1)
          elif line.startswith("Daily loop:"):
            current = "daily runs"
        largest = max(memory.status_mb(pid, "VmRSS") for pid in _descendants(self.pid))
        self.peaks[current] = round(max(self.peaks.get(current, 0.0), largest), 1)


def run_factor(data_root: str, factor: int, work: str, replay_spans: int, config: Optional[str],
               settings: Sequence[str] = ()) -> Dict[str, Any]:
  """Scales the data, runs the main command's pipeline part on it; its figures, or its failure."""
  data = data_root if factor == 1 else os.path.join(work, f"data-x{factor}")
  if factor != 1 and not os.path.exists(os.path.join(data, "ratings.csv")):
    datasets.scaled_movielens(data_root, data, factor)
  output_root = os.path.join(work, f"x{factor}")
  shutil.rmtree(output_root, ignore_errors=True)  # A cached run would time nothing.
  log = os.path.join(work, f"x{factor}.log")
  command = [sys.executable, "-m", "pipeline.local_runner", "--data_root", data, "--output_root", output_root,
             "--replay_spans", str(replay_spans), *settings] + (["--config", config] if config else [])
  start = time.monotonic()
  with open(log, "w") as f:
    process = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT)
    sampler = StageMemory(process.pid, log)
    sampler.start()
    returncode = process.wait()
    sampler.done.set()
    sampler.join()
  result = {"factor": factor, "ratings": _count_rows(os.path.join(data, "ratings.csv")), "log": log,
            "pipeline_seconds": round(time.monotonic() - start, 1), "returncode": returncode,
            "stage_peak_mb": sampler.peaks}
  if returncode != 0:
    return result
  with open(runs.record_path(output_root, runs.REFRESH_RECORD)) as f:
    refresh = json.load(f)
  refresh["interactions"] = _count_rows(os.path.join(output_root, "input", "backfill", "ratings.csv"))
  daily = []
  for name in sorted(os.listdir(os.path.join(output_root, runs.RUNS_DIR))):
    if name.startswith("span-") and name.endswith(".json"):
      with open(os.path.join(output_root, runs.RUNS_DIR, name)) as f:
        daily.append(json.load(f))
  return {**result, "refresh": refresh, "daily": sorted(daily, key=lambda r: r["span"])}


def _cell(value: float, base: Optional[float], digits: int = 1) -> str:
  ratio = f" ({value / base:.2f}x)" if base else ""
  return f"{value:,.{digits}f}{ratio}"


def rows(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """One row per factor and stage: seconds, ratings/s and peak MB where the stage has them."""
  out = []
  for result in results:
    if result["returncode"] != 0:
      out.append({"factor": result["factor"], "stage": f"failed (exit {result['returncode']}, {result['log']})"})
      continue
    refresh, daily = result["refresh"], result["daily"]
    out.append({"factor": result["factor"], "stage": "pipeline part", "seconds": result["pipeline_seconds"],
                "ratings": result["ratings"], "peak_mb": max(result["stage_peak_mb"].values(), default=None)})
    out.append({"factor": result["factor"], "stage": "SID refresh", "seconds": refresh["seconds"],
                "ratings": refresh["interactions"], "peak_mb": refresh["peak_rss_mb"]})
    for stage in STAGES:
      if stage in refresh["components"]:
        out.append({"factor": result["factor"], "stage": f"refresh {stage}",
                    "seconds": refresh["components"][stage]["seconds"], "ratings": refresh["interactions"],
                    "peak_mb": result["stage_peak_mb"].get(stage)})
    for record in daily:
      out.append({"factor": result["factor"], "stage": f"daily span {record['span']}",
                  "seconds": record.get("process_seconds", record["seconds"]), "ratings": record["interactions"],
                  "peak_mb": record.get("peak_rss_mb")})
  return out


def table(table_rows: List[Dict[str, Any]]) -> List[str]:
  """Markdown; each figure with its ratio to the first factor's figure of the same stage."""
  first_factor = table_rows[0]["factor"] if table_rows else None
  base = {row["stage"]: row for row in table_rows if row["factor"] == first_factor}
  lines = ["| data | stage | ratings | seconds | ratings/s | peak MB |", "| --- | --- | --- | --- | --- | --- |"]
  for row in table_rows:
    if "seconds" not in row:
      lines.append(f"| x{row['factor']} | {row['stage']} | | | | |")
      continue
    b = base.get(row["stage"]) if row["factor"] != first_factor else None
    rate = row["ratings"] / row["seconds"] if row["seconds"] else 0.0
    base_rate = b["ratings"] / b["seconds"] if b and b["seconds"] else None
    peak = _cell(row["peak_mb"], b and b.get("peak_mb"), 0) if row.get("peak_mb") else ""
    seconds = _cell(row["seconds"], b and b["seconds"])
    lines.append(f"| x{row['factor']} | {row['stage']} | {row['ratings']:,} | {seconds} | {_cell(rate, base_rate, 0)} "
                 f"| {peak} |")
  return lines


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_root", default="data/ml-latest-small")
  parser.add_argument("--factors", type=int, nargs="+", default=[1, 10, 100])
  parser.add_argument("--replay_spans", type=int, default=3)
  parser.add_argument("--work", default="/tmp/scale", help="scaled copies and each factor's output root")
  parser.add_argument("--output", default="outputs/scale")
  parser.add_argument("--config", help="a --config file for every run (pipeline.local_runner)")
  args = parser.parse_args(argv)
  if any(f < 1 for f in args.factors):
    parser.error(f"--factors must be at least 1, got {args.factors}")
  os.makedirs(args.work, exist_ok=True)
  results, settings = [], []
  for factor in args.factors:
    print(f"x{factor}: running (log {os.path.join(args.work, f'x{factor}.log')})", flush=True)
    results.append(run_factor(args.data_root, factor, args.work, args.replay_spans, args.config, settings))
    if not settings and results[-1]["returncode"] == 0:
      # Denser data would get finer spans from the data profile: every factor keeps the first one's.
      chosen = runs.load_config(os.path.join(args.work, f"x{factor}"))
      settings = ["--span_period", chosen.span_period, "--start_date", chosen.start_date]
    print("\n".join(table(rows(results))), flush=True)
  os.makedirs(args.output, exist_ok=True)
  lines = [f"# Scale: {args.data_root} x {', '.join(map(str, args.factors))}", ""] + table(rows(results))
  with open(os.path.join(args.output, "report.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(os.path.join(args.output, "report.json"), "w") as f:
    json.dump({"args": vars(args), "results": results}, f, indent=1)
  print(f"wrote {args.output}/report.md and report.json")
  return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
  sys.exit(main())
