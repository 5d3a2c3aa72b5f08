"""Beam executor of MovieLensExampleGen: CSV logs -> interaction tf.Examples split by span, item corpus.

One pass over the three files: ratings are joined with movies by item (unknown items are
quarantined, each item's first-seen time is found), then grouped by user to build each interaction's
history. Interactions are written to one split per calendar span, so a trainer can consume spans
1..N and evaluate on N+1; a later run with `start_date` at a new period writes only the new spans.
"""

import bisect
import collections
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.tfrecordio import _TFRecordUtil
from apache_beam.options.value_provider import StaticValueProvider
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from formats import item_corpus
from formats.errors import InputDataError
from components.movielens_example_gen import features, rows
from formats import spans

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
TAGS_FILE = "tags.csv"
INPUT_FILES = (RATINGS_FILE, MOVIES_FILE, TAGS_FILE)
BACKFILL_SPLIT = "backfill"
ITEMS_SPLIT = item_corpus.ITEMS_SPLIT
REPORT_FILE = "ingestion_report.json"
QUARANTINE_FILE = "quarantine.jsonl"
BAD_ROW_POLICIES = ("quarantine", "fail")
_MAX_EXAMPLES_SHOWN = 20
_EXAMPLES_FILE_SUFFIX = ".tfrecord.gz"


class _GzipTFRecordSink(fileio.FileSink):
  """Writes serialized records as GZIP TFRecords, the format TFX reads Examples splits in."""

  def open(self, fh):
    import gzip  # pylint: disable=g-import-not-at-top
    self._gzip = gzip.GzipFile(fileobj=fh, mode="wb")

  def write(self, record: Tuple[str, bytes]):
    _TFRecordUtil.write_record(self._gzip, record[1])

  def flush(self):
    self._gzip.close()


def check_policy(policy: str) -> str:
  if policy not in BAD_ROW_POLICIES:
    raise ValueError(f"bad_row_policy must be one of {', '.join(BAD_ROW_POLICIES)}, got {policy!r}")
  return policy


def _read_lines(path: str) -> Iterable[rows.CsvLine]:
  lines = rows.read_numbered_lines(path, open_fn=tf.io.gfile.GFile)
  next(lines, None)  # The header, checked before the pipeline starts.
  return lines


def check_inputs(input_base: str) -> Dict[str, str]:
  """Paths of the input files; raises InputDataError for a missing file or a wrong header."""
  paths = {}
  for name, header, required in ((RATINGS_FILE, rows.RATINGS_HEADER, True),
                                 (MOVIES_FILE, rows.MOVIES_HEADER, True),
                                 (TAGS_FILE, rows.TAGS_HEADER, False)):
    path = os.path.join(input_base, name)
    if not tf.io.gfile.exists(path):
      if required:
        raise InputDataError(f"{path}: required file is missing (a MovieLens directory holds "
                             f"{RATINGS_FILE}, {MOVIES_FILE} and optionally {TAGS_FILE})")
      continue
    first = next(rows.read_numbered_lines(path, open_fn=tf.io.gfile.GFile), None)
    if first is None:
      raise InputDataError(f"{path}: file is empty")
    problem = rows.check_header(first, header)
    if problem:
      raise InputDataError(problem)
    paths[name] = path
  return paths


class SpanRange:
  """Which split an interaction goes to, from the run's period and optional [start, end) dates."""

  def __init__(self, period: str, start_date: str, end_date: str, write_backfill: bool):
    self.period = spans.check_period(period)
    self.first = spans.span_of_date(start_date, period) if start_date else None
    self.end = spans.span_of_date(end_date, period) if end_date else None
    if self.first is not None and self.end is not None and self.end <= self.first:
      raise ValueError(f"end_date {end_date} must fall in a later {period} than start_date {start_date}")
    self.write_backfill = write_backfill

  def split_of(self, span: int) -> Optional[str]:
    if self.end is not None and span >= self.end:
      return None
    if self.first is not None and span < self.first:
      return BACKFILL_SPLIT if self.write_backfill else None
    return spans.split_name(span)


def _join_item(item_id: int, grouped: Dict[str, List[Any]], period: str, max_tags: int):
  """Per item: its example, and its ratings tagged with the item's first-seen span and its number of
  ratings in earlier spans; unknown items are bad rows."""
  movies = sorted(grouped["movies"], key=lambda m: m.line)
  ratings, tags = grouped["ratings"], grouped["tags"]
  if not movies:
    for r in ratings:
      yield beam.pvalue.TaggedOutput("bad", rows.BadRow(
          RATINGS_FILE, r.line, f"movieId {item_id} absent from {MOVIES_FILE}",
          f"{r.user_id},{r.item_id},{r.rating},{r.timestamp}"))
    if tags:
      yield beam.pvalue.TaggedOutput("bad", rows.BadRow(
          TAGS_FILE, 0, f"movieId {item_id} absent from {MOVIES_FILE}", f"{len(tags)} tags"))
    return
  for duplicate in movies[1:]:
    yield beam.pvalue.TaggedOutput("bad", rows.BadRow(
        MOVIES_FILE, duplicate.line, f"duplicate movieId {item_id} (first on line {movies[0].line})",
        duplicate.title))
  first_seen = min((r.timestamp for r in ratings), default=features.NEVER)
  first_seen_span = spans.span_of(first_seen, period) if ratings else features.NEVER
  yield beam.pvalue.TaggedOutput("items", features.item_example(
      movies[0], features.aggregate_tags(tags, max_tags), first_seen, first_seen_span, len(ratings)))
  rated_spans = sorted(spans.span_of(r.timestamp, period) for r in ratings)
  for r in ratings:
    prior = bisect.bisect_left(rated_spans, spans.span_of(r.timestamp, period))
    yield r.user_id, (r, first_seen_span, prior)


def _user_examples(user_id: int, rated: Iterable[Tuple[rows.Rating, int, int]], span_range: SpanRange,
                   history_length: int):
  """A user's interactions with their histories; a repeated (user, movie) keeps the earliest."""
  first_seen_span, prior_interactions = {}, {}
  unique: Dict[int, rows.Rating] = {}
  for rating, item_span, prior in sorted(rated, key=lambda x: (x[0].timestamp, x[0].line)):
    if rating.item_id in unique:
      yield beam.pvalue.TaggedOutput("bad", rows.BadRow(
          RATINGS_FILE, rating.line,
          f"duplicate rating of movieId {rating.item_id} by userId {user_id} "
          f"(kept line {unique[rating.item_id].line})", f"{rating.rating},{rating.timestamp}"))
      continue
    unique[rating.item_id] = rating
    first_seen_span[rating.item_id] = item_span
    prior_interactions[rating.item_id] = prior
  previous_time = None
  for rating, history in features.user_interactions(list(unique.values()), history_length):
    same_second = int(rating.timestamp == previous_time)
    previous_time = rating.timestamp
    span = spans.span_of(rating.timestamp, span_range.period)
    split = span_range.split_of(span)
    new_item = rating.item_id if first_seen_span[rating.item_id] == span else features.NO_ITEM
    yield beam.pvalue.TaggedOutput("stats", (split or "not_written", (
        span, int(rating.rating >= features.LIKED_MIN_RATING), new_item, user_id, same_second)))
    if split:
      example = features.interaction_example(rating, history, span, first_seen_span[rating.item_id],
                                             prior_interactions[rating.item_id])
      yield split, example.SerializeToString()


def _item_kinds(item: tf.train.Example) -> List[str]:
  """Counted item properties: rated or not, and content gaps worth knowing before embedding."""
  feature = item.features.feature
  kinds = ["rated" if feature["num_ratings"].int64_list.value[0] else "never_rated"]
  if not feature["genres"].bytes_list.value:
    kinds.append("no_genres")
  if not feature["year"].int64_list.value[0]:
    kinds.append("no_year_in_title")
  if feature["tags"].bytes_list.value:
    kinds.append("with_tags")
  return kinds


class _SplitStatsFn(beam.CombineFn):
  """Per split: interactions, liked, items first rated in their span, users and span bounds."""

  def create_accumulator(self):
    return {"interactions": 0, "liked": 0, "new_item_interactions": 0, "same_second_as_previous": 0,
            "new_items": set(), "users": set(), "spans": set()}

  def add_input(self, acc, record):
    span, liked, new_item, user, same_second = record
    acc["interactions"] += 1
    acc["liked"] += liked
    acc["same_second_as_previous"] += same_second
    if new_item != features.NO_ITEM:
      acc["new_item_interactions"] += 1
      acc["new_items"].add(new_item)
    acc["users"].add(user)
    acc["spans"].add(span)
    return acc

  def merge_accumulators(self, accumulators):
    merged = self.create_accumulator()
    for acc in accumulators:
      for key in ("interactions", "liked", "new_item_interactions", "same_second_as_previous"):
        merged[key] += acc[key]
      for key in ("new_items", "users", "spans"):
        merged[key] |= acc[key]
    return merged

  def extract_output(self, acc):
    return {"interactions": acc["interactions"], "liked": acc["liked"],
            "liked_fraction": round(acc["liked"] / max(acc["interactions"], 1), 4),
            "new_items": len(acc["new_items"]),
            "new_item_interactions": acc["new_item_interactions"], "users": len(acc["users"]),
            "same_second_as_previous": acc["same_second_as_previous"],
            "first_span": min(acc["spans"], default=None), "last_span": max(acc["spans"], default=None)}


class Executor(base_beam_executor.BaseBeamExecutor):
  """Reads a MovieLens-format directory; writes interaction spans, the item corpus and a report."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    policy = check_policy(exec_properties.get("bad_row_policy") or "quarantine")
    span_range = SpanRange(exec_properties.get("span_period") or "day",
                            exec_properties.get("start_date") or "",
                            exec_properties.get("end_date") or "",
                            bool(exec_properties.get("write_backfill", True)))
    history_length = int(exec_properties.get("history_length") or 20)
    max_tags = int(exec_properties.get("max_tags") or 10)
    paths = check_inputs(exec_properties["input_base"])

    examples = artifact_utils.get_single_instance(output_dict["examples"])
    items = artifact_utils.get_single_instance(output_dict["items"])
    report = artifact_utils.get_single_instance(output_dict["report"])
    staging = os.path.join(examples.uri, ".staging")
    stats_prefix = os.path.join(report.uri, ".stats", "part")

    with self._make_beam_pipeline() as p:
      def parsed(name: str, parse):
        if name not in paths:
          return p | f"No{name}" >> beam.Create([])
        return (p | f"Path{name}" >> beam.Create([paths[name]])
                | f"Read{name}" >> beam.FlatMap(_read_lines)
                | f"Reshuffle{name}" >> beam.Reshuffle()
                | f"Parse{name}" >> beam.Map(parse))

      parsed_rows = {}

      def good_and_bad(name: str, parse):
        parsed_rows[name] = parsed(name, parse)
        both = parsed_rows[name] | f"Split{name}" >> beam.Partition(
            lambda row, _: int(isinstance(row, rows.BadRow)), 2)
        return both[0] | f"Key{name}" >> beam.Map(lambda row: (row.item_id, row)), both[1]

      movies, bad_movies = good_and_bad(MOVIES_FILE, rows.parse_movie)
      ratings, bad_ratings = good_and_bad(RATINGS_FILE, rows.parse_rating)
      tags, bad_tags = good_and_bad(TAGS_FILE, rows.parse_tag)

      joined = ({"movies": movies, "ratings": ratings, "tags": tags}
                | "JoinByItem" >> beam.CoGroupByKey()
                | "PerItem" >> beam.FlatMap(
                    lambda kv: _join_item(*kv, period=span_range.period, max_tags=max_tags)
                ).with_outputs("items", "bad", main="rated"))
      per_user = (joined.rated
                  | "ByUser" >> beam.GroupByKey()
                  | "PerUser" >> beam.FlatMap(
                      lambda kv: _user_examples(*kv, span_range=span_range,
                                                history_length=history_length)
                  ).with_outputs("stats", "bad", main="examples"))

      _ = (per_user.examples
           | "WriteSpans" >> fileio.WriteToFiles(
               path=staging,
               temp_directory=StaticValueProvider(str, os.path.join(examples.uri, ".beam_temp")),
               destination=lambda kv: kv[0], sink=lambda _: _GzipTFRecordSink(),
               file_naming=fileio.destination_prefix_naming(_EXAMPLES_FILE_SUFFIX), shards=1)
           .with_input_types(Tuple[str, bytes]))
      _ = (joined["items"]
           | "SerializeItems" >> beam.Map(lambda e: e.SerializeToString())
           | "WriteItems" >> beam.io.WriteToTFRecord(
               os.path.join(items.uri, f"Split-{ITEMS_SPLIT}", "data"),
               file_name_suffix=_EXAMPLES_FILE_SUFFIX))
      _ = ((bad_movies, bad_ratings, bad_tags, joined.bad, per_user.bad)
           | "AllBad" >> beam.Flatten()
           | "BadToJson" >> beam.Map(lambda b: json.dumps(b._asdict()))
           | "WriteQuarantine" >> beam.io.WriteToText(
               os.path.join(report.uri, QUARANTINE_FILE), shard_name_template=""))
      split_stats = (per_user.stats
                     | "StatsPerSplit" >> beam.CombinePerKey(_SplitStatsFn())
                     | "SplitStatsJson" >> beam.MapTuple(lambda k, v: ("split", k, v)))
      line_counts = (
          [rows_of | f"Name{name}" >> beam.Map(lambda _, n=name: n)
           for name, rows_of in parsed_rows.items()]
          | "AllRows" >> beam.Flatten()
          | "RowsPerFile" >> beam.combiners.Count.PerElement()
          | "RowsJson" >> beam.MapTuple(lambda k, v: ("rows", k, v)))
      item_counts = (joined["items"]
                     | "ItemKinds" >> beam.FlatMap(_item_kinds)
                     | "ItemsPerKind" >> beam.combiners.Count.PerElement()
                     | "ItemsJson" >> beam.MapTuple(lambda k, v: ("items", k, v)))
      _ = ((split_stats, line_counts, item_counts)
           | "AllStats" >> beam.Flatten()
           | "StatsToJson" >> beam.Map(json.dumps)
           | "WriteStats" >> beam.io.WriteToText(stats_prefix, shard_name_template=""))

    stats = _read_stats(stats_prefix)
    bad_rows = _read_bad_rows(os.path.join(report.uri, QUARANTINE_FILE))
    _enforce_policy(policy, float(exec_properties.get("max_bad_row_fraction") or 0.0), bad_rows,
                    sum(stats["rows"].values()))
    split_names = _publish_staged_splits(staging, examples.uri)
    if not split_names:
      raise InputDataError(f"no interaction falls in the requested span range "
                           f"(start_date={exec_properties.get('start_date')!r}, "
                           f"end_date={exec_properties.get('end_date')!r})")
    examples.split_names = artifact_utils.encode_split_names(split_names)
    written_spans = [spans.span_of_split(s) for s in split_names if s != BACKFILL_SPLIT]
    examples.span = max(written_spans, default=0)
    examples.set_string_custom_property("span_period", span_range.period)
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    items.split_names = artifact_utils.encode_split_names([ITEMS_SPLIT])
    items.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    _write_report(os.path.join(report.uri, REPORT_FILE), exec_properties, span_range, stats, bad_rows)


def _read_stats(prefix: str) -> Dict[str, Dict[str, Any]]:
  stats: Dict[str, Dict[str, Any]] = {"split": {}, "rows": {}, "items": {}}
  with tf.io.gfile.GFile(prefix) as f:
    for line in f:
      kind, key, value = json.loads(line)
      stats[kind][key] = value
  tf.io.gfile.rmtree(os.path.dirname(prefix))
  return stats


def _read_bad_rows(path: str) -> List[rows.BadRow]:
  with tf.io.gfile.GFile(path) as f:
    bad = [rows.BadRow(**json.loads(line)) for line in f]
  return sorted(bad, key=lambda b: (b.file, b.line))


def _enforce_policy(policy: str, max_fraction: float, bad_rows: List[rows.BadRow],
                    total_rows: int) -> None:
  """Stops the run, naming file, line and reason, when bad rows are refused or too many."""
  if not bad_rows:
    return
  fraction = len(bad_rows) / max(total_rows, 1)
  if policy == "quarantine" and fraction <= max_fraction:
    return
  shown = "\n  ".join(b.describe() for b in bad_rows[:_MAX_EXAMPLES_SHOWN])
  why = ("bad_row_policy='fail'" if policy == "fail" else
         f"{fraction:.2%} of rows are bad, above max_bad_row_fraction={max_fraction:.2%}")
  raise InputDataError(f"{len(bad_rows)} bad input rows ({why}); first ones:\n  {shown}")


def _publish_staged_splits(staging: str, examples_uri: str) -> List[str]:
  """Moves files named '<split>-<shard>...' from staging into TFX's Split-<split>/ layout."""
  names = set()
  if tf.io.gfile.exists(staging):
    for file_name in tf.io.gfile.listdir(staging):
      split = file_name.split("-", 1)[0]
      split_dir = os.path.join(examples_uri, f"Split-{split}")
      tf.io.gfile.makedirs(split_dir)
      tf.io.gfile.rename(os.path.join(staging, file_name), os.path.join(split_dir, file_name))
      names.add(split)
    tf.io.gfile.rmtree(staging)
  temp = os.path.join(examples_uri, ".beam_temp")
  if tf.io.gfile.exists(temp):
    tf.io.gfile.rmtree(temp)
  return sorted(names, key=lambda s: (s != BACKFILL_SPLIT, s if s == BACKFILL_SPLIT else spans.span_of_split(s)))


def _write_report(path: str, exec_properties: Dict[str, Any], span_range: SpanRange,
                  stats: Dict[str, Dict[str, Any]], bad_rows: List[rows.BadRow]) -> None:
  splits = stats["split"]
  written = {k: v for k, v in splits.items() if k != "not_written"}
  by_reason = collections.Counter(b.reason.split(" (")[0] for b in bad_rows)
  interactions = sum(s["interactions"] for s in splits.values())
  liked = sum(s["liked"] for s in splits.values())
  report = {
      "input_base": exec_properties["input_base"],
      "span_period": span_range.period,
      "rows_read": stats["rows"],
      "interactions": {"valid": interactions,
                       "same_second_as_previous": sum(s["same_second_as_previous"] for s in splits.values()), "written": sum(s["interactions"] for s in written.values()),
                       "outside_span_range": splits.get("not_written", {}).get("interactions", 0),
                       "liked_fraction": round(liked / max(interactions, 1), 4)},
      "items": {"total": stats["items"]["rated"] + stats["items"].get("never_rated", 0),
                **stats["items"]},
      "splits": {name: dict(s, start=(spans.span_start(s["first_span"], span_range.period).isoformat()))
                 for name, s in sorted(written.items())},
      "bad_rows": {"total": len(bad_rows), "by_reason": dict(by_reason.most_common()),
                   "policy": exec_properties.get("bad_row_policy") or "quarantine",
                   "examples": [b.describe() for b in bad_rows[:_MAX_EXAMPLES_SHOWN]]},
  }
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump(report, f, indent=1)
