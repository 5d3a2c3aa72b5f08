"""The main command, locally (LocalDagRunner, Beam's direct engine, SQLite ML Metadata): from a MovieLens-format
directory to a served ranking model, through the production loop.

  python -m pipeline.local_runner [--data_root DIR] [--output_root DIR] [--span_period P] [--start_date D]

1. Chooses the span period and dates from the data (unless given) and says what it chose and why.
2. Partitions the data into span folders (pipeline/partition.py), as a daily export would land them.
3. Runs the SID refresh pipeline on everything before the first span.
4. Replays the daily pipeline over the first `--replay_spans` spans, one run per span (pipeline/replay.py).
"""

import argparse
import os
import sys
import time
from typing import Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from formats import spans
from formats.errors import InputDataError
from pipeline import beam_runners, configs, data_profile, memory, partition
from pipeline import pipeline, replay, runs, stage_times, summary

INPUT_DIR = "input"
# The main command's replay: enough spans to evaluate, bless and push; pipeline/replay.py runs the rest.
REPLAY_SPANS = 3
ALL_SPANS = "all"


def _span_count(text: str) -> Optional[int]:
  """A count of spans, or None for 'all'."""
  if text == ALL_SPANS:
    return None
  if not text.isdigit():
    raise argparse.ArgumentTypeError(f"expected a number of spans or {ALL_SPANS!r}, got {text!r}")
  return int(text)


def _args(argv):
  parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
  parser.add_argument("--data_root", default=configs.DATA_ROOT,
                      help="MovieLens-format directory (ratings.csv, movies.csv, optional tags.csv)")
  parser.add_argument("--output_root", default=configs.OUTPUT_ROOT,
                      help="where the span partitions, artifacts and the ML Metadata database go")
  parser.add_argument("--span_period", choices=spans.PERIODS,
                      help="default: chosen from the data (the finest period dense enough)")
  parser.add_argument("--start_date", help="first daily span's date; earlier data is the SID refresh's "
                      "backfill (default: chosen from the data)")
  parser.add_argument("--replay_spans", type=_span_count, default=REPLAY_SPANS,
                      help="daily runs to replay after the SID refresh, or 'all'")
  parser.add_argument("--precomputed_embeddings", default=None,
                      help=".npz with item_ids and embeddings, used instead of the MiniLM encoder")
  parser.add_argument("--min_span_interactions", type=int, default=data_profile.MIN_INTERACTIONS_PER_SPAN,
                      help="the median interactions per span a span period needs to be chosen or accepted")
  parser.add_argument("--config", help="JSON file of PipelineConfig fields to override (model settings, "
                      "blessing thresholds, Beam arguments: see pipeline/configs.py)")
  parser.add_argument("--beam_runner", choices=beam_runners.ENGINES,
                      help="the Beam stages' engine (default: in_memory, or --config's beam_pipeline_args); dask: "
                      "the --dask_scheduler cluster, or a LocalCluster of 2 worker processes for each run")
  parser.add_argument("--dask_scheduler", default="", help="with --beam_runner dask: the scheduler's address, "
                      "e.g. tcp://10.0.0.1:8786")
  parser.add_argument("--no_cache", action="store_true", help="re-run every component")
  args = parser.parse_args(argv)
  if args.dask_scheduler and args.beam_runner != "dask":
    parser.error("--dask_scheduler needs --beam_runner dask")
  return args


def prepare(args) -> configs.PipelineConfig:
  """Chooses the loop's settings, partitions the data into span folders and saves the settings."""
  data = data_profile.profile(args.data_root)
  choice = data_profile.choose(data, span_period=args.span_period, start_date=args.start_date,
                               min_interactions_per_span=args.min_span_interactions)
  print("Settings chosen from the data:")
  for reason in choice.reasons:
    print(f"  {reason}")
  input_base = os.path.join(args.output_root, INPUT_DIR)
  partition.ensure_partitioned(args.data_root, input_base, choice.span_period, choice.start_date, data=data)
  config = configs.PipelineConfig(**{
      "rqvae_v0_cutoff": choice.v0_cutoff, **configs.PipelineConfig.overrides(args.config), "input_base": input_base,
      "output_root": args.output_root, "span_period": choice.span_period, "start_date": choice.start_date,
      "precomputed_embeddings": args.precomputed_embeddings, "enable_cache": not args.no_cache,
      **({"beam_pipeline_args": beam_runners.engine_args(args.beam_runner, args.dask_scheduler)}
         if args.beam_runner else {})})
  runs.save_config(config)
  return config


def main(argv=None) -> int:
  args = _args(argv)
  return runs.run_holding(args.output_root, "the main command", lambda: _run(args), "\nStopped")


def _run(args) -> int:
  try:
    start = time.monotonic()
    config = prepare(args)
    prepare_seconds = time.monotonic() - start
    print(f"\nSID refresh: {config.input_base}/backfill -> {config.output_root}", flush=True)
    start = time.monotonic()
    refresh = runs.run_with_engine(config, pipeline.create_sid_refresh_pipeline)
    if refresh is None:
      return 2
    refresh_seconds = time.monotonic() - start
    runs.write_record(runs.record_path(config.output_root, runs.REFRESH_RECORD), {
        "prepare_seconds": round(prepare_seconds, 1), "seconds": round(refresh_seconds, 1),
        "components": refresh, "peak_rss_mb": memory.peak_rss_mb()})
    summary.print_summary(runs.store(config), config.pipeline_name)
    span_list = replay.spans_to_run(config, None, None, args.replay_spans)
  except InputDataError as error:
    print(f"\nStopped: {error}", file=sys.stderr)
    return 2
  print(f"\nDaily loop: {len(span_list)} runs, one per {config.span_period} span", flush=True)
  records = replay.replay_and_report(config, span_list)
  if records is None:
    return 2
  print("\n" + stage_times.format_stage_times(prepare_seconds, refresh, refresh_seconds, records))
  return 0


if __name__ == "__main__":
  sys.exit(main())
