"""Beam pipeline arguments for the engines the project's Beam jobs run on outside a cloud runner, and
the few transforms that let one pipeline run the same on all of them.

`local_args` is Beam's own engine (FnApiRunner) in this process or in worker processes; `dask_args`
is Beam's DaskRunner on a running dask.distributed cluster. Both pass --setup_file: for a remote
engine it ships the project, and locally it stops TFX from building an ephemeral package of the
project before each Beam job.

The transforms stand in for Beam's own where the DaskRunner gets those wrong (see `dask_args`):
`read_tfrecords` for ReadFromTFRecord, `ByTag` for tagged outputs, `Batches` for BatchElements and
`WriteFiles`, a pipeline's one sink, for its several file sinks.
"""

import dataclasses
import math
import os
import zlib
from typing import Any, Dict, Iterable, List, Tuple, Union

import apache_beam as beam
import tensorflow as tf

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
  what a DoFn emits in finish_bundle is dropped (BatchElements' last batch of each bundle, and the
  files of a sink whose shards the runner chooses: it writes empty ones); each use of a side input
  recomputes its producers, so a file sink leaves a beam-temp-* copy beside its output. Which
  executors run on it: tests/test_beam_runners.py.
  """
  return [f"--runner={DASK_RUNNER}", f"--dask_client_address={address}",
          f"--setup_file={SETUP_FILE}"]


def read_tfrecords(pattern: str) -> beam.PTransform:
  """The records of the TFRecord files matching `pattern` (compression from their names): a ReadAll
  of the pattern, which the DaskRunner runs, where it fails on a Read of a source."""
  return beam.Create([pattern]) | beam.io.ReadAllFromTFRecord()


def _tagged(pair: Tuple[str, Any], tag: str) -> List[Any]:
  return [pair[1]] if pair[0] == tag else []


class ByTag(beam.PTransform):
  """(tag, value) pairs -> {tag: PCollection of its values}: a DoFn's several outputs without tagged
  outputs, each of which the DaskRunner would give all of them."""

  def __init__(self, *tags: str):
    super().__init__()
    self._tags = tags

  def expand(self, pairs: beam.PCollection) -> Dict[str, beam.PCollection]:
    return {tag: pairs | tag.capitalize() >> beam.FlatMap(_tagged, tag) for tag in self._tags}


def _chunks(values: Iterable[Any], size: int) -> Iterable[List[Any]]:
  chunk = []
  for value in values:
    chunk.append(value)
    if len(chunk) == size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


class Batches(beam.PTransform):
  """(int id, value) pairs -> lists of at most `size` of them. BatchElements emits each bundle's last
  batch in finish_bundle, which the DaskRunner drops; here the pairs are keyed by id modulo the number
  of batches that `count` (about how many pairs come) fills, grouped and cut: about one batch a key,
  spread over the workers."""

  def __init__(self, size: int, count: int):
    super().__init__()
    self._size, self._keys = size, max(1, math.ceil(count / size))

  def expand(self, pairs: beam.PCollection) -> beam.PCollection:
    return (pairs
            | "Key" >> beam.Map(lambda pair, keys: (pair[0] % keys, pair), keys=self._keys)
            | "Group" >> beam.GroupByKey()
            | "Cut" >> beam.FlatMapTuple(lambda _, pairs, size: _chunks(pairs, size), size=self._size))


@dataclasses.dataclass(frozen=True)
class TFRecordFiles:
  """GZIP TFRecord files `<prefix>-SSSSS-of-NNNNN<suffix>`, named as Beam's sinks name them."""
  prefix: str
  suffix: str
  shards: int = 4

  def path(self, shard: int) -> str:
    return f"{self.prefix}-{shard:05d}-of-{self.shards:05d}{self.suffix}"

  @staticmethod
  def write(path: str, records: Iterable[bytes]) -> None:
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
      for record in records:
        writer.write(record)


@dataclasses.dataclass(frozen=True)
class TextFile:
  """One file of lines at `file`."""
  file: str
  shards = 1

  def path(self, shard: int) -> str:
    del shard
    return self.file

  @staticmethod
  def write(path: str, lines: Iterable[str]) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
      f.writelines(line + "\n" for line in lines)


Files = Union[TFRecordFiles, TextFile]


def _keyed_by_shard(record: Union[bytes, str], name: str, shards: int
                    ) -> Tuple[Tuple[str, int], Union[bytes, str]]:
  data = record.encode() if isinstance(record, str) else record
  return (name, zlib.crc32(data) % shards), record


def _write_shard(key: Tuple[str, int], records: Iterable[Any], files: Dict[str, Files]) -> str:
  name, shard = key
  path = files[name].path(shard)
  tf.io.gfile.makedirs(os.path.dirname(path))
  files[name].write(path, (record for record in records if record is not None))
  return path


class WriteFiles(beam.PTransform):
  """{name: PCollection of records} -> `files[name]`, every shard written, empty where no record goes;
  returns the paths. Meant as a pipeline's one sink, applied last: the DaskRunner computes only what
  feeds the last transform, and Beam's own sinks need finish_bundle or side inputs. A shard (chosen by
  a hash of the record) is written whole by one call, so a retry rewrites it."""

  def __init__(self, files: Dict[str, Files]):
    super().__init__()
    self._files = files

  def expand(self, records: Dict[str, beam.PCollection]) -> beam.PCollection:
    keyed = [records[name] | f"Key{name}" >> beam.Map(_keyed_by_shard, name, output.shards)
             for name, output in self._files.items()]
    every_shard = [((name, shard), None)
                   for name, output in self._files.items() for shard in range(output.shards)]
    return ((*keyed, self.pipeline | "EveryShard" >> beam.Create(every_shard))
            | "Flatten" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "Write" >> beam.MapTuple(_write_shard, files=self._files))
