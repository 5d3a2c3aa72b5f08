"""Replays the daily loop over a range of spans: one daily pipeline run per span, each its own process as a
scheduler would start it; resumable after a kill; writes a report (table and plot).

  python -m pipeline.replay --output_root outputs [--first_span N] [--last_span M | --spans K]

Spans already recorded (<output_root>/runs/span-<N>.json, written last by each run) are skipped; a span
whose run was killed is run again and its finished components come from TFX's cache. Writes
<output_root>/replay/report.md, report.json and report.png.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from formats import spans
from formats.errors import InputDataError
from models.ranking import trainer as ranking_trainer
from models.ranking.trainer import REFRESHED, SID_STALENESS, STALE
from pipeline import daily_run, runs
from pipeline.configs import PipelineConfig

REPORT_DIR = "replay"


def log_path(output_root: str, span: int) -> str:
  return os.path.join(output_root, runs.RUNS_DIR, f"span-{span}.log")


def _run_in_process(output_root: str, span: int) -> Dict[str, float]:
  """Runs one span as `python -m pipeline.daily_run`, its output in runs/span-<N>.log: exit code and wall
  seconds (the run records its own peak memory: pipeline/memory.py says why not this process's figure)."""
  start = time.monotonic()
  os.makedirs(os.path.join(output_root, runs.RUNS_DIR), exist_ok=True)
  with open(log_path(output_root, span), "w") as log:
    child = subprocess.Popen([sys.executable, "-m", "pipeline.daily_run", "--output_root", output_root,
                              "--span", str(span)], stdout=log, stderr=subprocess.STDOUT)
    returncode = child.wait()
  return {"returncode": returncode, "process_seconds": round(time.monotonic() - start, 1)}


def spans_to_run(config: PipelineConfig, first: Optional[int], last: Optional[int], count: Optional[int],
                 pending: bool = False) -> List[int]:
  """The loop's spans from `first` (default: its first span) to `last`, at most `count` of them; with
  `pending`, only those without a daily run's record (so `count` are the next spans to run)."""
  existing = [s for s in daily_run.input_spans(config.input_base)
              if s >= spans.span_of_date(config.start_date, config.span_period)]
  if not existing:
    raise InputDataError(f"{config.input_base} holds no span from {config.start_date} on")
  first = existing[0] if first is None else first
  chosen = [s for s in existing if s >= first and (last is None or s <= last) and not (
      pending and os.path.exists(daily_run.record_path(config.output_root, s)))]
  return chosen if count is None else chosen[:count]


def replay(config: PipelineConfig, span_list: Sequence[int], stream=sys.stdout) -> List[Dict[str, Any]]:
  """Runs every span of `span_list` not yet recorded, in order; stops at the first refused or failed one."""
  for span in span_list:
    if os.path.exists(daily_run.record_path(config.output_root, span)):
      print(f"span {span}: already done", file=stream, flush=True)
      continue
    process = _run_in_process(config.output_root, span)
    if process["returncode"] != 0:
      raise RuntimeError(f"the daily run of span {span} failed (exit {process['returncode']}, log "
                         f"{log_path(config.output_root, span)}); re-run the replay to resume from it")
    path = daily_run.record_path(config.output_root, span)
    with open(path) as f:
      record = json.load(f)
    record.update(process)
    with open(path, "w") as f:
      json.dump(record, f, indent=1)
    print(f"span {span} ({record['date']}): {record['interactions']} interactions, {record['new_items']} new "
          f"items, {process['process_seconds']}s, peak {record['peak_rss_mb']:.0f} MB, AUC {_auc(record, 'overall')} "
          f"(item like-rate {_baseline_auc(record)})"
          f"{', pushed ' + record['pushed_version'] if record.get('pushed_version') else ''}; retrieval "
          f"Recall@10 {_retrieval(record, 'candidate', 'overall', 'recall@10')}"
          f"{', pushed ' + record['retrieval_pushed_version'] if record.get('retrieval_pushed_version') else ''}"
          f"{', recommend ' + record['recommend_pushed_version'] if record.get('recommend_pushed_version') else ''}",
          file=stream, flush=True)
  return [_load(config, s) for s in span_list if os.path.exists(daily_run.record_path(config.output_root, s))]


def _load(config: PipelineConfig, span: int) -> Dict[str, Any]:
  with open(daily_run.record_path(config.output_root, span)) as f:
    return json.load(f)


def _auc(record: Dict[str, Any], name: str) -> str:
  return _formatted(record.get("tfma", {}).get(name, {}).get("auc"))


def _baseline_auc(record: Dict[str, Any]) -> str:
  baseline = record.get("trainer_scored", {}).get(ranking_trainer.ITEM_LIKE_RATE, {})
  return _formatted(baseline.get("overall", {}).get("auc"))


def _retrieval(record: Dict[str, Any], model: str, name: str, metric: str) -> str:
  """A figure of the RetrievalEvaluator's: `model` candidate or baseline, slice `name`."""
  return _formatted(record.get("retrieval", {}).get(model, {}).get(name, {}).get(metric), 4)


def _served(record: Dict[str, Any], signature: str, metric: str) -> str:
  """A figure of the served two-stage model on the span's liked interactions (examples: a count)."""
  value = record.get("retrieval", {}).get("served", {}).get(signature, {}).get(metric)
  return str(value) if metric == "examples" and value is not None else _formatted(value, 4)


def _staleness(record: Dict[str, Any], name: str, metric: str) -> str:
  """The trainer's figure on the span's `name` (stale or refreshed) SIDs (examples: a count)."""
  value = record.get("trainer_scored", {}).get(SID_STALENESS, {}).get(name, {}).get(metric)
  return str(value) if metric == "examples" and value is not None else _formatted(value)


def _formatted(value: Optional[float], digits: int = 3) -> str:
  return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def write_report(config: PipelineConfig, records: List[Dict[str, Any]]) -> str:
  """report.md (table), report.json and report.png (wall time, peak memory and AUC per span)."""
  from components.figures import plt, save_png
  out = os.path.join(config.output_root, REPORT_DIR)
  os.makedirs(out, exist_ok=True)
  lines = [f"# Daily loop replay: {len(records)} {config.span_period} spans\n",
           "Each row is one daily pipeline run. AUC is TFMA's, of the model trained through the previous "
           "span, on this span (which it has never seen): the previous step's AUC on the next span. Beside it, "
           "the item like-rate baseline's AUC on the same interactions (models/ranking/baselines.py). Stale SIDs: "
           "the span's interactions with items whose SID came from an RQ-VAE that never saw them (new since the "
           "SID refresh), and the trainer's AUC on them beside its AUC on the others.\n",
           "| # | span | date | interactions | new items | wall s | peak MB | AUC | item like-rate AUC | cold-start "
           "| long-tail | stale-SID interactions | stale-SID AUC | other AUC | blessed | pushed version |",
           "|" + "---|" * 16]
  for i, r in enumerate(records):
    lines.append(f"| {i} | {r['span']} | {r['date']} | {r['interactions']:,} | {r['new_items']} | "
                 f"{r.get('process_seconds', r['seconds'])} | {r.get('peak_rss_mb', 'n/a')} | {_auc(r, 'overall')} | "
                 f"{_baseline_auc(r)} | "
                 f"{_auc(r, 'cold_start')} | {_auc(r, 'long_tail')} | {_staleness(r, STALE, 'examples')} | "
                 f"{_staleness(r, STALE, 'auc')} | {_staleness(r, REFRESHED, 'auc')} | "
                 f"{'yes' if r.get('blessed') else 'no'} | {r.get('pushed_version', '')} |")
  lines += ["", "Retrieval (TIGER over the same Semantic IDs): the model trained through the previous span, scored "
            "on this span over the whole catalog (each interaction's history -> its item, history items left out), "
            "beside the blessed retrieval model on the same interactions; new items: first seen in this span.\n",
            "On the interactions the user liked, the two-stage model served during the span (pushed by the "
            "previous run): `recommend` (100 retrieved, then ranked) and its `retrieve` alone, Recall@10 each.\n",
            "| # | span | Recall@5 | NDCG@5 | Recall@10 | NDCG@10 | new items Recall@10 | blessed model's Recall@10 "
            "| blessed | pushed version | served: liked | recommend Recall@10 | retrieve Recall@10 "
            "| recommend version |", "|" + "---|" * 14]
  for i, r in enumerate(records):
    lines.append(f"| {i} | {r['span']} | " + " | ".join(
        _retrieval(r, "candidate", "overall", metric) for metric in ("recall@5", "ndcg@5", "recall@10", "ndcg@10"))
        + f" | {_retrieval(r, 'candidate', 'new_items', 'recall@10')} | "
        f"{_retrieval(r, 'baseline', 'overall', 'recall@10')} | "
        f"{'yes' if r.get('retrieval', {}).get('blessed') else 'no'} | {r.get('retrieval_pushed_version', '')} | "
        f"{_served(r, 'recommend', 'examples')} | {_served(r, 'recommend', 'recall@10')} | "
        f"{_served(r, 'retrieve', 'recall@10')} | {r.get('recommend_pushed_version', '')} |")
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(os.path.join(out, "report.json"), "w") as f:
    json.dump(records, f, indent=1)
  figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
  index = range(len(records))
  axes[0].plot(index, [r.get("process_seconds", r["seconds"]) for r in records], marker="o")
  axes[0].set(title="wall time per daily run", xlabel="span index", ylabel="seconds")
  axes[1].plot(index, [r.get("peak_rss_mb", 0) for r in records], marker="o")
  axes[1].set(title="peak memory per daily run", xlabel="span index", ylabel="MB")
  for name in ("overall", "cold_start", "long_tail"):
    axes[2].plot(index, [r.get("tfma", {}).get(name, {}).get("auc") for r in records], marker="o", label=name)
  axes[2].set(title="AUC on the span, before training on it", xlabel="span index")
  axes[2].legend()
  save_png(figure, out, "report.png")
  return os.path.join(out, "report.md")


def replay_and_report(config: PipelineConfig, span_list: Sequence[int]) -> Optional[List[Dict[str, Any]]]:
  """Replays `span_list` and writes the report: the spans' records, or None after saying why a span was
  refused or failed."""
  try:
    records = replay(config, span_list)
  except (InputDataError, RuntimeError) as error:
    print(f"Replay stopped: {error}", file=sys.stderr)
    return None
  print(f"Replay report: {write_report(config, records)}")
  return records


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output_root", required=True)
  parser.add_argument("--first_span", type=int, help="default: the loop's first span")
  parser.add_argument("--last_span", type=int)
  parser.add_argument("--spans", type=int, help="run at most this many spans: the next ones not yet run")
  args = parser.parse_args(argv)
  try:
    with runs.holding(args.output_root, "a replay"):
      config = runs.load_config(args.output_root)
      span_list = spans_to_run(config, args.first_span, args.last_span, args.spans, pending=True)
      return 0 if replay_and_report(config, span_list) is not None else 2
  except InputDataError as error:
    print(f"Replay refused: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
