"""Beam pipeline arguments for the engines the project's Beam jobs run on outside a cloud runner.

`local_args` is Beam's own engine (FnApiRunner) in this process or in worker processes; `dask_args`
is Beam's DaskRunner on a running dask.distributed cluster. Both pass --setup_file: for a remote
engine it ships the project, and locally it stops TFX from building an ephemeral package of the
project before each Beam job.

The project's executors build their Beam pipelines from components/beam_io.py, whose transforms run
the same on all of these engines.
"""

import os
from typing import List

RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
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
  """
  return [f"--runner={DASK_RUNNER}", f"--dask_client_address={address}",
          f"--setup_file={SETUP_FILE}"]
