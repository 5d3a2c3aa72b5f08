"""SpanExampleGen alone on a backfill: seconds and peak memory by Beam engine and chunk size.

  .venv/bin/python bench/ingest.py --input_base OUTPUT_ROOT/input --end_date 2013-09-01 --span_period month \
      [--engine in_memory|multi_processing] [--chunk_interactions 250000] [--work /tmp/ingest]

--input_base is a partitioned input (the main command's <output_root>/input, e.g. bench/scale.py's x10 run);
the backfill before --end_date is ingested as the SID refresh ingests it. Prints seconds, the largest process
and the sum over the processes (the engine's workers included), sampled twice a second.
"""

import argparse
import os
import shutil
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfx.components.example_gen import driver
from tfx.dsl.components.base import base_beam_executor

from components.span_example_gen import component, executor
from bench.process_memory import PeakSampler
from pipeline import beam_runners, configs


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--input_base", required=True)
  parser.add_argument("--end_date", required=True, help="the first daily span's date: the backfill ends before it")
  parser.add_argument("--span_period", required=True)
  parser.add_argument("--engine", choices=("in_memory", "multi_processing"), default="in_memory")
  parser.add_argument("--chunk_interactions", type=int,
                      default=configs.PipelineConfig.backfill_chunk_interactions)
  parser.add_argument("--work", default="/tmp/ingest")
  args = parser.parse_args(argv)
  gen = component.SpanExampleGen(input_base=args.input_base, span_period=args.span_period,
                                 span_pattern=component.BACKFILL_PATTERN, end_date=args.end_date,
                                 backfill_chunk_interactions=args.chunk_interactions, max_bad_row_fraction=1.0)
  exec_properties = driver.FileBasedDriver(None).resolve_exec_properties(dict(gen.exec_properties), None, None)
  shutil.rmtree(args.work, ignore_errors=True)
  outputs = {key: [channel.type()] for key, channel in gen.outputs.items()}
  for key, [artifact] in outputs.items():
    artifact.uri = os.path.join(args.work, key)
    os.makedirs(artifact.uri)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_runners.local_args(args.engine, 1 if args.engine == "in_memory" else 0))
  peak = PeakSampler(interval=0.5)
  peak.start()
  start = time.monotonic()
  executor.Executor(context).Do({}, outputs, exec_properties)
  print(f"{args.engine}, chunks of {args.chunk_interactions or 'all'}: {time.monotonic() - start:.1f} s, largest "
        f"process {peak.largest:,.0f} MB, all processes {peak.total:,.0f} MB")
  return 0


if __name__ == "__main__":
  sys.exit(main())
