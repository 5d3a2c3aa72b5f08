"""Beam pipeline arguments for the engines the project's Beam jobs run on outside a cloud runner.

`local_args` is Beam's own engine (FnApiRunner) in this process or in worker processes; `dask_args`
is Beam's DaskRunner on a running dask.distributed cluster. Both pass --setup_file: for a remote
engine it ships the project, and locally it stops TFX from building an ephemeral package of the
project before each Beam job.

The project's executors build their Beam pipelines from components/beam_io.py, whose transforms run
the same on all of these engines.
"""

import contextlib
import logging
import os
from typing import Iterator, List, Optional

RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
# --beam_runner of the main command: the FnApiRunner in this process or a worker process per core, or Dask.
ENGINES = ("in_memory", "multi_processing", "dask")
# A --dask_client_address that asks for a LocalCluster started for each pipeline run (`running`).
LOCAL_CLUSTER = "local"
LOCAL_CLUSTER_WORKERS = 2
_DASK_ADDRESS = "--dask_client_address="
# Partitions of each Create on Dask, which the later transforms keep: the input files' pieces and shards
# spread over the workers (the runner's default, 128 elements a partition, puts a few files in one).
DASK_PARTITIONS = 16
# Not in Beam's table of runner short names, so --runner needs the class path.
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")


def local_args(mode: str = "in_memory", workers: int = 1) -> List[str]:
  """FnApiRunner, the DirectRunner's engine without its attempt to download the Prism binary.

  `workers` is the number of bundles processed in parallel (0: one per core); in_memory keeps
  everything in this process, multi_processing pickles every DoFn into worker processes.
  """
  if mode not in RUNNING_MODES:
    raise ValueError(f"Beam running mode must be one of {', '.join(RUNNING_MODES)}, got {mode!r}")
  return ["--runner=FnApiRunner", f"--direct_running_mode={mode}",
          f"--direct_num_workers={workers}", f"--setup_file={SETUP_FILE}"]


def dask_args(address: str) -> List[str]:
  """DaskRunner on the dask.distributed scheduler at `address` (e.g. 'tcp://10.0.0.1:8786').

  Beam 2.72's DaskRunner runs a subset of Beam and gets the rest wrong, mostly silently. It
  translates Create, ParDo, GroupByKey and Flatten only, so a Read of a source (ReadFromTFRecord;
  ReadAll works) fails; every tagged output of a ParDo (with_outputs, Partition) receives all its
  outputs; only the branch of the last transform is computed, so any other sink writes nothing;
  what a DoFn emits in finish_bundle is dropped (BatchElements' last batch of each bundle, Top's
  results, and the files of a sink whose shards the runner chooses: it writes empty ones); each use
  of a side input recomputes its producers, so a file sink of one shard leaves a beam-temp-* copy
  beside its output and one of several fixed shards fails.
  components/beam_io.py avoids all of these; tests/test_beam_runners.py runs every executor on it.
  Each Create is cut into DASK_PARTITIONS partitions at most.
  """
  return [f"--runner={DASK_RUNNER}", f"{_DASK_ADDRESS}{address}", f"--dask_npartitions={DASK_PARTITIONS}",
          f"--setup_file={SETUP_FILE}"]


def engine_args(engine: str, dask_scheduler: str = "") -> List[str]:
  """The arguments of an engine of ENGINES: in_memory (this process), multi_processing (a worker process
  per core) or dask (the scheduler at `dask_scheduler`, or a LocalCluster of LOCAL_CLUSTER_WORKERS worker
  processes started for each pipeline run)."""
  if engine not in ENGINES:
    raise ValueError(f"Beam engine must be one of {', '.join(ENGINES)}, got {engine!r}")
  if engine == "dask":
    return dask_args(dask_scheduler or LOCAL_CLUSTER)
  return local_args(engine, 1 if engine == "in_memory" else 0)


def dask_address(args: List[str]) -> Optional[str]:
  """The Dask scheduler `args` run on, None for another engine."""
  return next((a[len(_DASK_ADDRESS):] for a in args if a.startswith(_DASK_ADDRESS)), None)


@contextlib.contextmanager
def running(args: List[str]) -> Iterator[List[str]]:
  """`args` for the block, with a LocalCluster of worker processes started for it where they ask for one."""
  if dask_address(args) != LOCAL_CLUSTER:
    yield args
    return
  from dask import distributed
  logging.getLogger("distributed").setLevel(logging.WARNING)  # Not a line per worker in the run's output.
  with distributed.LocalCluster(n_workers=LOCAL_CLUSTER_WORKERS, processes=True, threads_per_worker=1,
                                dashboard_address=None) as cluster:
    try:
      yield [_DASK_ADDRESS + cluster.scheduler_address if a.startswith(_DASK_ADDRESS) else a for a in args]
    finally:
      while True:  # The DaskRunner connects a client for each pipeline and never closes it.
        try:
          distributed.default_client().close()
        except ValueError:  # No client left.
          break


def tfx_component_args(args: List[str]) -> Optional[List[str]]:
  """Where TFX's own Beam components (StatisticsGen, Evaluator) run under `args`, when not on `args`'
  engine: the DaskRunner runs no Read of a source, and they read their examples with one (tfx_bsl's
  TFXIO), so under Dask they run on the FnApiRunner's multi_processing mode, a worker process per core
  of the machine that runs the pipeline. None on every other engine."""
  return local_args("multi_processing", 0) if dask_address(args) is not None else None
