"""Beam transforms that run the same on every Beam engine, Beam 2.72's DaskRunner included, which gets
several of Beam's own wrong (pipeline/beam_runners.py `dask_args` lists how): `read_tfrecords` for
ReadFromTFRecord, `ByTag` for tagged outputs, `Batches` for BatchElements, `WriteFiles`, a pipeline's
one sink, for its several file sinks, and `MergedJson` (read back by `read_merged_json`) for the counts
a launcher checks after the pipeline. The project's Beam executors are built from them.
"""

import dataclasses
import json
import math
import os
import zlib
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Tuple, Union

import apache_beam as beam
import tensorflow as tf

from formats import progress


def read_tfrecords(pattern: str) -> beam.PTransform:
  """The records of the TFRecord files matching `pattern` (compression from their names): a ReadAll
  of the files, which the DaskRunner runs, where it fails on a Read of a source. The files are listed
  when the pipeline is built, each a Create element, so that each can be read by another worker (the
  DaskRunner keeps a Create's partitions through the pipeline)."""
  return beam.Create(sorted(tf.io.gfile.glob(pattern))) | beam.io.ReadAllFromTFRecord()


def _tagged(pair: Tuple[str, Any], tag: str) -> List[Any]:
  return [pair[1]] if pair[0] == tag else []


class ByTag(beam.PTransform):
  """(tag, value) pairs -> {tag: PCollection of its values}: a DoFn's several outputs without tagged
  outputs, each of which the DaskRunner would give all of them."""

  def __init__(self, *tags: str):
    super().__init__()
    self._tags = tags

  # No annotations on expand: Beam reads them as type hints, and warns on a dict of PCollections.
  def expand(self, pairs):
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
  """(int id, value) pairs -> lists of at most `size` of them. BatchElements emits each bundle's
  last batch in finish_bundle, which the DaskRunner drops; here the pairs are keyed by id modulo
  the number of batches that `count` (about how many pairs come) fills, grouped and cut: about one
  batch a key, spread over the workers."""

  def __init__(self, size: int, count: int):
    super().__init__()
    self._size, self._keys = size, max(1, math.ceil(count / size))

  def expand(self, pairs: beam.PCollection) -> beam.PCollection:
    return (pairs
            | "Key" >> beam.Map(lambda pair, keys: (pair[0] % keys, pair), keys=self._keys)
            | "Group" >> beam.GroupByKey()
            | "Cut" >> beam.FlatMap(lambda group, size: _chunks(group[1], size), size=self._size))


@dataclasses.dataclass(frozen=True)
class TFRecordFiles:
  """GZIP TFRecord files `<prefix>-SSSSS-of-NNNNN<suffix>`, named as Beam's sinks name them."""
  prefix: str
  suffix: str
  shards: int = 4  # Fixed, as a runner's choice comes in finish_bundle; a few write in parallel.

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
  shards: ClassVar[int] = 1

  def path(self, shard: int) -> str:
    del shard
    return self.file

  @staticmethod
  def write(path: str, lines: Iterable[str]) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
      f.write("")  # GFile creates the file on its first write: a file without lines too.
      for line in lines:
        f.write(line + "\n")


Files = Union[TFRecordFiles, TextFile]


Record = Union[bytes, str]


def _keyed_by_shard(records: Union[Record, List[Record]], name: str, shards: int
                    ) -> Tuple[Tuple[str, int], Union[Record, List[Record]]]:
  first = records[0] if isinstance(records, list) else records
  data = first.encode() if isinstance(first, str) else first
  return (name, zlib.crc32(data) % shards), records


def _records(elements: Iterable[Union[None, Record, List[Record]]]) -> Iterable[Record]:
  for element in elements:
    if isinstance(element, list):
      yield from element
    elif element is not None:
      yield element


def _write_shard(group: Tuple[Tuple[str, int], Iterable[Any]], files: Dict[str, Files]) -> str:
  (name, shard), elements = group
  path = files[name].path(shard)
  tf.io.gfile.makedirs(os.path.dirname(path))
  files[name].write(path, progress.counted(_records(elements), f"records written to {os.path.basename(path)}"))
  return path


class WriteFiles(beam.PTransform):
  """{name: PCollection of records} -> `files[name]`, every shard written, empty where no record
  goes; returns the paths. An element may be a list of records, written together to one shard: a
  producer with many records per key (an example per interaction of a user) sends one element through
  the shuffle instead of one per record. Meant as a pipeline's one sink, applied last: the DaskRunner computes
  only what feeds the last transform, and Beam's own sinks need finish_bundle or side inputs. A
  shard (chosen by a hash of the record) is written whole by one call, so a retry rewrites it."""

  def __init__(self, files: Dict[str, Files]):
    super().__init__()
    self._files = files

  def expand(self, records):  # {name: PCollection} -> the written paths (see ByTag.expand)
    keyed = [records[name] | f"Key{name}" >> beam.Map(_keyed_by_shard, name, output.shards)
             for name, output in self._files.items()]
    # A None (skipped when written) for each shard, so that a shard without records is written too.
    every_shard = [((name, shard), None)
                   for name, output in self._files.items() for shard in range(output.shards)]
    return ((*keyed, self.pipeline | "EveryShard" >> beam.Create(every_shard))
            | "Flatten" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "Write" >> beam.Map(_write_shard, files=self._files))


Merge = Callable[[Iterable[Dict[str, Any]]], Dict[str, Any]]


class MergedJson(beam.PTransform):
  """Dicts of counts -> one JSON line of `merge` over them, none when there are none. `merge` must be
  associative (a Beam combine) and give zeros for no input, which read_merged_json relies on."""

  def __init__(self, merge: Merge):
    super().__init__()
    self._merge = merge

  def expand(self, stats: beam.PCollection) -> beam.PCollection:
    return (stats
            | "Merge" >> beam.CombineGlobally(self._merge).without_defaults()
            | "Json" >> beam.Map(json.dumps))


def read_merged_json(path: str, merge: Merge) -> Dict[str, Any]:
  """What MergedJson wrote to the TextFile `path`: merge over its lines (zeros for none)."""
  with tf.io.gfile.GFile(path) as f:
    lines = f.read().splitlines()
  return merge(json.loads(line) for line in lines)
