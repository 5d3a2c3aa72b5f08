"""Running the pipelines locally (LocalDagRunner, SQLite ML Metadata) and the loop's saved settings.

`<output_root>/config.json` holds the PipelineConfig the main command chose, so that a scheduler (or
pipeline/replay.py) starts each daily run with nothing but the output root and a span.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import sys
from typing import Any, Callable, Dict, Iterator, Optional, TextIO

import tensorflow as tf
from ml_metadata import metadata_store
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration import pipeline as tfx_pipeline

from formats.errors import InputDataError
from pipeline import beam_runners, progress
from pipeline.configs import PipelineConfig

CONFIG_FILE = "config.json"
RUNS_DIR = "runs"  # <output_root>/runs/<run>.json: what each run of the loop did (refresh, span-<N>)
REFRESH_RECORD = "refresh"
LOCK_FILE = ".lock"  # <output_root>/.lock: which command holds the output root (flock'ed while it runs)
# The output roots whose lock this process's caller holds: a replay's daily runs run under the replay's.
_HELD_ENV = "SID_RANKING_HELD_OUTPUT_ROOTS"


@contextlib.contextmanager
def holding(output_root: str, what: str) -> Iterator[None]:
  """`output_root` for `what` alone while the block runs: InputDataError, naming the holder, when another
  command holds it (the main command, a replay, a daily run, the experiments), so that no command reads
  the loop's artifacts while another writes them. Commands started inside the block (a replay's daily
  runs, the experiments' loop) run under the same hold."""
  root = os.path.abspath(output_root)
  held = [r for r in os.environ.get(_HELD_ENV, "").split(os.pathsep) if r]
  if root in held:
    yield
    return
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, LOCK_FILE), "a+", encoding="utf-8") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      raise InputDataError(f"{root} is in use by {lock.read().strip() or 'another process'}: wait until it "
                           f"ends, or give another --output_root") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{what} (pid {os.getpid()})")
    lock.flush()
    os.environ[_HELD_ENV] = os.pathsep.join(held + [root])
    try:
      yield
    finally:
      os.environ[_HELD_ENV] = os.pathsep.join(held)
      lock.truncate(0)


def run_holding(output_root: str, what: str, run: Callable[[], int], stopped: str) -> int:
  """`run()`'s exit code, run while holding `output_root`; 2, and `stopped: why` on stderr, when another
  command holds it."""
  try:
    with holding(output_root, what):
      return run()
  except InputDataError as error:
    print(f"{stopped}: {error}", file=sys.stderr)
    return 2


def save_config(config: PipelineConfig) -> str:
  os.makedirs(config.output_root, exist_ok=True)
  path = os.path.join(config.output_root, CONFIG_FILE)
  with open(path + ".tmp", "w") as f:
    json.dump(dataclasses.asdict(config), f, indent=1)
  os.replace(path + ".tmp", path)
  return path


def load_config(output_root: str) -> PipelineConfig:
  path = os.path.join(output_root, CONFIG_FILE)
  if not os.path.exists(path):
    raise InputDataError(f"{path} not found: run the main command (pipeline.local_runner) first, which "
                         f"partitions the data, runs the SID refresh and saves the loop's settings there")
  with open(path) as f:
    return PipelineConfig(**json.load(f))


def record_path(output_root: str, run: str) -> str:
  return os.path.join(output_root, RUNS_DIR, f"{run}.json")


def write_record(path: str, record: Dict) -> None:
  """Writes a run's record whole or not at all (a crash leaves no half-written record)."""
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    json.dump(record, f, indent=1)
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def connection(config: PipelineConfig):
  return metadata.sqlite_metadata_connection_config(config.metadata_path)


def store(config: PipelineConfig) -> metadata_store.MetadataStore:
  return metadata_store.MetadataStore(connection(config))


def error_chain_message(error: BaseException) -> str:
  """The message of the InputDataError behind an error, if any (Beam and TFX wrap executor errors)."""
  while error is not None:
    if isinstance(error, InputDataError):
      return str(error)
    error = error.__cause__ or error.__context__
  return ""


def run_with_engine(config: PipelineConfig, build: Callable[[PipelineConfig, Any], tfx_pipeline.Pipeline]
                    ) -> Optional[Dict[str, Dict]]:
  """`run` of the pipeline that `build(config, metadata connection)` makes, on config's Beam engine, a
  LocalCluster started for the run where the config asks for one (pipeline/beam_runners.py)."""
  with beam_runners.running(config.beam_pipeline_args) as args:
    return run(build(config.replace(beam_pipeline_args=args), connection(config)))


def run(pipeline: tfx_pipeline.Pipeline, stream: TextIO = sys.stdout) -> Optional[Dict[str, Dict]]:
  """Runs a pipeline with component progress on `stream`; returns {component: {seconds, cached}}, or None
  after printing why when the input data was refused (no stack trace for bad input)."""
  with progress.watch(stream, quiet_other_handlers=True) as watcher:
    try:
      LocalDagRunner().run(pipeline)
    except Exception as error:
      message = error_chain_message(error)
      if not message:
        raise
      print(f"\nStopped after {watcher.elapsed():.0f}s: input data refused.\n{message}", file=sys.stderr)
      return None
  cached = sum(1 for s in watcher.finished.values() if s["cached"])
  print(f"{pipeline.pipeline_info.pipeline_name}: finished in {watcher.elapsed():.0f}s "
        f"({cached} of {len(watcher.finished)} components from cache).", file=stream, flush=True)
  return watcher.finished
