"""Beam executor of SpanExampleGen: one span's MovieLens files + the previous FeatureState -> the
span's interactions, its new items, the next FeatureState and an ingestion report.

Two shuffles, and nothing from earlier spans but the state:
  1. by item: this input's movies, ratings and tags with the item's state. Ratings of unknown items are
     bad rows; a repeated (user, movie) keeps the earliest; each rating gets its item's first-seen span
     and counters; a new item gets its item record; the item's next state is written.
  2. by user: those ratings with the user's state: history, user counters, the interaction examples and
     the user's next state.
Rows cross the shuffles as plain tuples, which Beam's coder writes natively (a NamedTuple is pickled),
and in batches where the data allows: a piece of an input file goes to the join by item as one list of rows
per item, a user's examples to the sink as one list (on the x10 backfill, 130.0 -> 94.6 s against a
record per line and per example). Only the join by user moves one element per rating.
Users and items without new rows pass through to the next state unchanged. An item's content (title,
genres, tags) is read once, in the input where it is new: a known item listed again (a daily dump of
the catalog) and its later tags are counted in the report and left out.

Duplicates: a (user, movie) repeated within one input keeps its earliest rating (the others are bad
rows), but a user re-rating a movie in a later span is a new interaction: the state keeps only each
user's recent items, not every item they ever rated. So one backfill-mode run over all the data and
span-by-span runs give the same examples unless a user rates a movie again in a later span.

A backfill larger than `backfill_chunk_interactions` runs as one such pipeline per chunk of consecutive
spans, each on the state the one before wrote (chunks.py), so that no process holds the backfill.

The pipeline's shapes (components/beam_io.py) are chosen to run on every Beam runner, Dask's
included: the joins emit (kind, value) pairs instead of tagged outputs, and every output goes
through one sink.
"""

import bisect
import collections
import dataclasses
import datetime
import json
import os
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import apache_beam as beam
import tensorflow as tf
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from components.span_example_gen import chunks, features
from formats import feature_state, item_corpus, movielens, progress, spans
from formats import interaction_features as fields
from formats.errors import InputDataError
from formats.artifacts import INGESTION_REPORT_FILE as REPORT_FILE, INTERACTIONS_SPLIT
from components import beam_io

RATINGS, MOVIES, TAGS, FILES = movielens.RATINGS, movielens.MOVIES, movielens.TAGS, movielens.FILES
# Input split name -> the header of the file it reads in the span's directory.
HEADERS = {split: movielens.HEADERS[file] for split, file in FILES.items()}
ITEMS_SPLIT = item_corpus.ITEMS_SPLIT
QUARANTINE_FILE = "quarantine.jsonl"
BAD_ROW_POLICIES = ("quarantine", "fail")
_MAX_EXAMPLES_SHOWN = 20
# Input files are read in pieces of about this size, each by one worker: none holds a file whole.
PIECE_BYTES = 8 << 20
_EXAMPLES_FILE_SUFFIX = ".tfrecord.gz"
SCRATCH_DIR = ".ingest"  # In the report's folder: a split backfill's files, chunk states, stats; removed.


def check_policy(policy: str) -> str:
  if policy not in BAD_ROW_POLICIES:
    raise ValueError(f"bad_row_policy must be one of {', '.join(BAD_ROW_POLICIES)}, got {policy!r}")
  return policy


def _date(timestamp: int) -> str:
  return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).date().isoformat()


@dataclasses.dataclass(frozen=True)
class SpanWindow:
  """The spans a run ingests: span `first` == `last` in span mode; in backfill mode (`first` None)
  every span before end_date's. `last` is the span of the state the run writes."""
  period: str
  last: int
  first: Optional[int] = None
  end_date: str = ""

  @classmethod
  def of(cls, exec_properties: Dict[str, Any]) -> "SpanWindow":
    period = spans.check_period(exec_properties["span_period"])
    end_date = exec_properties.get("end_date") or ""
    if end_date:
      return cls(period, spans.span_of_date(end_date, period) - 1, None, end_date)
    span = int(exec_properties[example_gen_utils.SPAN_PROPERTY_NAME])
    return cls(period, span, span)

  def start(self) -> Optional[str]:
    return None if self.first is None else spans.span_start(self.first, self.period).isoformat()

  def end(self) -> str:
    """The last day of the window."""
    return (spans.span_start(self.last + 1, self.period) - datetime.timedelta(days=1)).isoformat()

  def problem(self, timestamp: int) -> str:
    """Why a rating at `timestamp` does not belong to this input, or ''."""
    span = spans.span_of(timestamp, self.period)
    if self.first is None and span > self.last:
      return f"timestamp {_date(timestamp)} not before end_date {self.end_date}"
    if self.first is not None and span != self.first:
      return f"timestamp {_date(timestamp)} outside span {self.first} ({self.start()}..{self.end()})"
    return ""


# A count for the report: ((kind, name), how many), summed over the pipeline.
Count = Tuple[Tuple[str, str], int]


class _ItemFeatures(NamedTuple):
  """What an interaction needs from its item, computed where the item's ratings meet."""
  first_seen_span: int
  prior_interactions: int  # Ratings of the item in spans before the interaction's.
  prior: features.PriorCounts  # Every rating of the item strictly before the interaction.


def input_paths(exec_properties: Dict[str, Any]) -> Dict[str, str]:
  """Split name -> file, from the input_config whose patterns the driver resolved to the run's span."""
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(exec_properties["input_config"], input_config)
  paths = {s.name: os.path.join(exec_properties["input_base"], s.pattern) for s in input_config.splits}
  if sorted(paths) != sorted(HEADERS):
    raise ValueError(f"input_config must have the splits {', '.join(HEADERS)}, got {', '.join(paths)}")
  return paths


def check_inputs(paths: Dict[str, str]) -> None:
  """InputDataError for a missing or empty file or a wrong header."""
  for name, path in paths.items():
    if not tf.io.gfile.exists(path):
      raise InputDataError(f"{path}: required file is missing (an input directory holds ratings.csv, "
                           f"movies.csv and tags.csv, each at least with its header)")
    first = next(movielens.read_numbered_lines(path, open_fn=tf.io.gfile.GFile), None)
    if first is None:
      raise InputDataError(f"{path}: file is empty")
    problem = movielens.check_header(first, HEADERS[name])
    if problem:
      raise InputDataError(f"{os.path.dirname(path)}/{problem}")


def half_life_days(exec_properties: Dict[str, Any]) -> float:
  return float(exec_properties.get("counter_half_life_days") or fields.COUNTER_HALF_LIFE_DAYS)


def check_previous_state(previous: Optional[types.Artifact], window: SpanWindow, half_life: float) -> None:
  """InputDataError unless the previous state ends before this run's span, in the same period, with decayed
  counters of the same half-life."""
  if previous is None:
    return
  span, period = feature_state.span_of(previous), feature_state.period_of(previous)
  if period != window.period:
    raise InputDataError(f"previous_state {previous.uri} holds {period} spans (up to span {span}) but "
                         f"this run ingests {window.period} span {window.last}")
  previous_half_life = feature_state.half_life_of(previous)
  if previous_half_life != half_life:
    held = (f"decayed counters with a half-life of {previous_half_life:g} days" if previous_half_life
            else "no decayed counters (written before them)")
    raise InputDataError(f"previous_state {previous.uri} holds {held} but this run's counter_half_life_days "
                         f"is {half_life:g}; run a SID refresh to ingest everything again with it")
  if span >= window.last:
    raise InputDataError(f"previous_state {previous.uri} already includes span {span}; this run "
                         f"ingests span {window.last}, which must come after it")
  for prefix in (feature_state.USERS_PREFIX, feature_state.ITEMS_PREFIX):
    if not tf.io.gfile.glob(feature_state.files_pattern(previous.uri, prefix)):
      raise InputDataError(f"previous_state {previous.uri} (span {span}) has no "
                           f"{feature_state.files_pattern('', prefix)} files")


def _read_piece(piece: movielens.FilePiece) -> Iterable[movielens.CsvLine]:
  lines = movielens.read_piece_lines(piece, open_fn=tf.io.gfile.GFile)
  if piece.start == 0 and not piece.numbered:
    next(lines, None)  # The header, checked before the pipeline starts.
  yield from lines
  if piece.pieces > 1:
    progress.report(f"piece {piece.index + 1} of {piece.pieces} of {os.path.basename(piece.path)} read")


def _parse_rating(line: movielens.CsvLine, window: SpanWindow) -> Union[movielens.Rating, movielens.BadRow]:
  rating = movielens.parse_rating(line)
  problem = "" if isinstance(rating, movielens.BadRow) else window.problem(rating.timestamp)
  return movielens.BadRow(line.file, line.number, problem, line.text) if problem else rating


def _rating_text(rating: movielens.Rating) -> str:
  return f"{rating.user_id},{rating.item_id},{rating.rating},{rating.timestamp}"


def _unknown_item(item_id: int, ratings: Iterable[movielens.Rating], tags: Sequence[movielens.Tag],
                  known_from: str) -> Iterable[Tuple[str, movielens.BadRow]]:
  reason = f"movieId {item_id} absent from {known_from}"
  for r in ratings:
    yield "bad", movielens.BadRow(FILES[RATINGS], r.line, reason, _rating_text(r))
  if tags:
    yield "bad", movielens.BadRow(FILES[TAGS], 0, reason, f"{len(tags)} tags")


def _first_per_user(item_id: int, ratings: Iterable[movielens.Rating]
                    ) -> Tuple[List[movielens.Rating], List[movielens.BadRow]]:
  """The item's ratings in time order (same second: file order), each user's earliest only; the
  repeated ones as bad movielens."""
  kept: Dict[int, movielens.Rating] = {}
  bad = []
  for r in sorted(ratings, key=lambda r: (r.timestamp, r.line)):
    if r.user_id in kept:
      bad.append(movielens.BadRow(FILES[RATINGS], r.line,
                             f"duplicate rating of movieId {item_id} by userId {r.user_id} "
                             f"(kept line {kept[r.user_id].line})", f"{r.rating},{r.timestamp}"))
    else:
      kept[r.user_id] = r
  return list(kept.values()), bad


def _duplicate_movies(item_id: int, movies: List[movielens.Movie]) -> List[movielens.BadRow]:
  return [movielens.BadRow(FILES[MOVIES], duplicate.line,
                      f"duplicate movieId {item_id} (first on line {movies[0].line})", duplicate.title)
          for duplicate in movies[1:]]


def _known_item_stats(movies: List[movielens.Movie], tags: List[movielens.Tag]
                      ) -> Iterable[Tuple[str, Count]]:
  """A known item re-listed in movies.csv is ignored; its new tags are too (its content was fixed
  when it was new), but counted so that the report shows what was left out."""
  if movies:
    yield "stats", (("items", "already_known"), 1)
  if tags:
    yield "stats", (("items", "tags_of_known_items"), len(tags))


def _join_item(item_id: int, grouped: Dict[str, List[Any]], period: str, max_tags: int,
               known_from: str, half_life_days: float) -> Iterable[Tuple[str, Any]]:
  """Per item, as (kind, value) pairs: its ratings keyed by user with the item's features ("rated"),
  its next state and, for an item new in this input, its item record; ratings and tags of an unknown
  item are bad movielens."""
  movies = sorted((movielens.Movie(*m) for rows in grouped["movies"] for m in rows), key=lambda m: m.line)
  [state] = [feature_state.ItemState(*s) for s in grouped["state"]] or [None]
  tags = [movielens.Tag(*t) for rows in grouped["tags"] for t in rows]
  ratings = [movielens.Rating(*r) for rows in grouped["ratings"] for r in rows]
  if state is None and not movies:
    yield from _unknown_item(item_id, ratings, tags, known_from)
    return
  ratings, bad_rows = _first_per_user(item_id, ratings)
  new_movie = None if state else movies[0]
  if state is None:
    bad_rows += _duplicate_movies(item_id, movies)
    state = feature_state.ItemState(item_id, feature_state.NEVER, 0, 0, 0.0, new_movie.title)
  else:
    yield from _known_item_stats(movies, tags)
  for bad in bad_rows:
    yield "bad", bad
  rating_spans = [spans.span_of(r.timestamp, period) for r in ratings]
  first_seen_span = state.first_seen_span
  if first_seen_span == feature_state.NEVER and ratings:
    first_seen_span = rating_spans[0]
    yield "stats", (("items", "first_rated"), 1)
  prior = features.PriorCounts(state.ratings, state.liked, state.rating_sum, state.decayed_count,
                               state.decayed_liked, state.decayed_at)
  for rating, span in zip(ratings, rating_spans):
    earlier_spans = state.ratings + bisect.bisect_left(rating_spans, span)
    yield "rated", (rating.user_id, (tuple(rating), (first_seen_span, earlier_spans, tuple(prior))))
    prior = prior.add(rating.rating, rating.timestamp, half_life_days)
  if new_movie:
    yield "items", features.item_example(
        new_movie, features.aggregate_tags(tags, max_tags),
        ratings[0].timestamp if ratings else features.NEVER, first_seen_span, len(ratings))
  yield "state", feature_state.item_record(state._replace(
      first_seen_span=first_seen_span, ratings=prior.count, liked=prior.liked, rating_sum=prior.rating_sum,
      decayed_count=prior.decayed_count, decayed_liked=prior.decayed_liked, decayed_at=prior.decayed_at))


def _join_user(user_id: int, grouped: Dict[str, List[Any]], period: str, history_length: int,
               half_life_days: float) -> Iterable[Tuple[str, Any]]:
  """Per user, as (kind, value) pairs: the interaction examples in time order and the user's next
  state."""
  [state] = ([feature_state.UserState(*s) for s in grouped["state"]]
             or [feature_state.UserState(user_id, (), feature_state.NEVER, 0, 0, 0.0)])
  rated = [(movielens.Rating(*r), _ItemFeatures(first_seen, earlier, features.PriorCounts(*prior)))
           for r, (first_seen, earlier, prior) in grouped["rated"]]
  item_features = {rating.line: item for rating, item in rated}
  prior = features.PriorCounts(state.interactions, state.liked, state.rating_sum, state.decayed_count,
                               state.decayed_liked, state.decayed_at)
  recent = [features.HistoryItem(*item) for item in zip(state.recent_items, state.recent_liked,
                                                         state.recent_timestamps)]
  last_timestamp = state.last_timestamp
  counts: collections.Counter = collections.Counter()  # One count per stat and user: fewer elements downstream.
  examples = []  # Written as one batch: one element per user through the sink's shuffle.
  for rating, history in features.user_interactions([r for r, _ in rated], history_length, recent):
    item = item_features[rating.line]
    span = spans.span_of(rating.timestamp, period)
    examples.append(features.interaction_example(
        rating, history, span, item.first_seen_span, item.prior_interactions, prior, item.prior,
        half_life_days=half_life_days).SerializeToString())
    counts.update(stat for stat, counted in (("valid", True), ("liked", fields.liked(rating.rating)),
                                             ("same_second_as_previous", rating.timestamp == last_timestamp),
                                             ("new_item_interactions", item.first_seen_span == span)) if counted)
    prior = prior.add(rating.rating, rating.timestamp, half_life_days)
    recent = (history + [features.HistoryItem(rating.item_id, fields.liked(rating.rating), rating.timestamp)]
              )[-history_length:]
    last_timestamp = rating.timestamp
  if rated:
    counts["users"] += 1
    yield "examples", examples
  for stat, count in counts.items():
    yield "stats", (("interactions", stat), count)
  yield "state", feature_state.user_record(state._replace(
      recent_items=tuple(h.item_id for h in recent), recent_liked=tuple(h.liked for h in recent),
      recent_timestamps=tuple(h.timestamp for h in recent), last_timestamp=last_timestamp,
      interactions=prior.count, liked=prior.liked, rating_sum=prior.rating_sum,
      decayed_count=prior.decayed_count, decayed_liked=prior.decayed_liked, decayed_at=prior.decayed_at))


def _item_kinds(item: tf.train.Example) -> List[Count]:
  """Counted properties of a new item: rated or not, and content gaps worth knowing before embedding."""
  feature = item.features.feature
  kinds = ["new", "rated" if feature["num_ratings"].int64_list.value[0] else "never_rated"]
  if not feature["genres"].bytes_list.value:
    kinds.append("no_genres")
  if not feature["year"].int64_list.value[0]:
    kinds.append("no_year_in_title")
  if feature["tags"].bytes_list.value:
    kinds.append("with_tags")
  return [(("items", kind), 1) for kind in kinds]


def _bad_reason(bad: movielens.BadRow) -> Count:
  """Bad rows are counted by reason without the details in parentheses (which line was kept...)."""
  return ("bad_rows", bad.reason.split(" (")[0]), 1


def _piece_rows(piece: movielens.FilePiece, name: str, parse: Callable[[movielens.CsvLine], Any]
                ) -> Iterable[Tuple[str, Any]]:
  """One piece's lines parsed, as (kind, value) pairs: its rows grouped by item, ("rows", (item_id, [row
  tuples])), once per item of the piece; each bad row; and the count of the piece's rows. Grouped here, a
  piece sends one element per item through the join by item, not one per line."""
  by_item: Dict[int, List[tuple]] = collections.defaultdict(list)
  read = 0
  for line in _read_piece(piece):
    row = parse(line)
    read += 1
    if isinstance(row, movielens.BadRow):
      yield "bad", row
    else:
      by_item[row.item_id].append(tuple(row))
  yield from (("rows", pair) for pair in by_item.items())
  yield "stats", (("rows_read", FILES[name]), read)


def _parsed(p: beam.Pipeline, name: str, chunk: chunks.Chunk, window: SpanWindow) -> Dict[str, beam.PCollection]:
  """Every line of an input file (but the header) parsed: {"rows": (item_id, [row tuples]) per item and
  piece, "bad": each BadRow, "stats": rows read per piece}."""
  parse = {RATINGS: lambda line: _parse_rating(line, window), MOVIES: movielens.parse_movie,
           TAGS: movielens.parse_tag}[name]
  pieces = movielens.file_pieces(chunk.paths[name], PIECE_BYTES, open_fn=tf.io.gfile.GFile, numbered=chunk.numbered)
  # The pieces are spread over the workers, not the lines: no shuffle of every line.
  return (p | f"Pieces{name}" >> beam.Create(pieces)
          | f"Reshuffle{name}" >> beam.Reshuffle()
          | f"Parse{name}" >> beam.FlatMap(_piece_rows, name, parse)
          | f"Rows{name}" >> beam_io.ByTag("rows", "bad", "stats"))


def _previous_records(p: beam.Pipeline, previous_uri: Optional[str], prefix: str, parse
                      ) -> beam.PCollection:
  """(id, state) of every user or item in the previous state; none without one."""
  if previous_uri is None:
    return p | f"No{prefix}" >> beam.Create([])
  return (p | f"Read{prefix}" >> beam_io.read_tfrecords(
              feature_state.files_pattern(previous_uri, prefix))
          | f"Parse{prefix}" >> beam.Map(parse)
          | f"Key{prefix}" >> beam.Map(lambda state: (state[0], tuple(state))))


def _files(outputs: Dict[str, types.Artifact], state_uri: str, scratch: str, chunk: int, chunks: int
           ) -> Dict[str, beam_io.Files]:
  """Where each output of chunk `chunk`'s pipeline goes: the splits in TFX's layout (a file prefix per
  chunk), the state at `state_uri`, and in `scratch` its bad rows and its stats for the report."""
  data = "data" if chunks == 1 else f"data-chunk{chunk:05d}"
  split = lambda key, name: beam_io.TFRecordFiles(
      os.path.join(outputs[key].uri, f"Split-{name}", data), _EXAMPLES_FILE_SUFFIX)
  state = lambda prefix: beam_io.TFRecordFiles(os.path.join(state_uri, prefix), feature_state.FILE_SUFFIX)
  return {"examples": split("examples", INTERACTIONS_SPLIT), "items": split("items", ITEMS_SPLIT),
          "user_state": state(feature_state.USERS_PREFIX),
          "item_state": state(feature_state.ITEMS_PREFIX),
          "quarantine": beam_io.TextFile(_scratch_path(scratch, QUARANTINE_FILE, chunk)),
          "stats": beam_io.TextFile(_scratch_path(scratch, "stats.jsonl", chunk))}


def _scratch_path(scratch: str, name: str, chunk: int) -> str:
  return os.path.join(scratch, f"chunk-{chunk:05d}-{name}")


def _stats(counted: List[beam.PCollection], bad: beam.PCollection) -> beam.PCollection:
  """JSON lines for the report: each counted (kind, name) with its count summed, and the first bad rows (by
  file and line), a line only when there are any."""
  counts = (counted
            | "AllCounts" >> beam.Flatten()
            | "Count" >> beam.CombinePerKey(sum)
            | "CountsJson" >> beam.MapTuple(lambda key, n: ("count", key, n)))
  # Not Top.Smallest, which emits in finish_bundle; without defaults, which need a side input.
  first_bad = (bad
               | "FirstBad" >> beam.CombineGlobally(beam.combiners.TopCombineFn(
                   _MAX_EXAMPLES_SHOWN, key=lambda b: (b.file, b.line), reverse=True)
               ).without_defaults()
               | "FirstBadJson" >> beam.Map(lambda bads: ("first_bad", None,
                                                          [(b.file, b.line, b.describe()) for b in bads])))
  return ((counts, first_bad)
          | "AllStats" >> beam.Flatten()
          | "StatsToJson" >> beam.Map(json.dumps))


def _ingest(p: beam.Pipeline, chunk: chunks.Chunk, previous_uri: Optional[str], window: SpanWindow,
            exec_properties: Dict[str, Any], files: Dict[str, beam_io.Files], known_from: str) -> None:
  """The Beam pipeline of one chunk: parse, join by item, join by user, write the outputs and the counts."""
  half_life = half_life_days(exec_properties)
  good, bad, counted = {}, [], []
  for name in FILES:
    parsed = _parsed(p, name, chunk, window)
    good[name] = parsed["rows"]
    bad.append(parsed["bad"])
    counted.append(parsed["stats"])

  by_item = ({"movies": good[MOVIES], "ratings": good[RATINGS], "tags": good[TAGS],
              "state": _previous_records(p, previous_uri, feature_state.ITEMS_PREFIX,
                                         feature_state.parse_item)}
             | "JoinByItem" >> beam.CoGroupByKey()
             | "PerItem" >> beam.FlatMap(
                 lambda kv: _join_item(*kv, period=window.period, known_from=known_from,
                                       max_tags=int(exec_properties["max_tags"]), half_life_days=half_life))
             | "ItemOutputs" >> beam_io.ByTag("rated", "items", "state", "bad", "stats"))
  by_user = ({"rated": by_item["rated"],
              "state": _previous_records(p, previous_uri, feature_state.USERS_PREFIX,
                                         feature_state.parse_user)}
             | "JoinByUser" >> beam.CoGroupByKey()
             | "PerUser" >> beam.FlatMap(
                 lambda kv: _join_user(*kv, period=window.period,
                                       history_length=int(exec_properties["history_length"]),
                                       half_life_days=half_life))
             | "UserOutputs" >> beam_io.ByTag("examples", "state", "stats"))

  for prefix, records in ((feature_state.USERS_PREFIX, by_user["state"]),
                          (feature_state.ITEMS_PREFIX, by_item["state"])):
    counted.append(records | f"Count{prefix}" >> beam.Map(lambda _, n=prefix: (("state", n), 1)))
  all_bad = (*bad, by_item["bad"]) | "AllBad" >> beam.Flatten()
  counted += [by_item["stats"], by_user["stats"],
              by_item["items"] | "ItemKinds" >> beam.FlatMap(_item_kinds),
              all_bad | "BadReasons" >> beam.Map(_bad_reason)]
  _ = ({"examples": by_user["examples"],
        "items": by_item["items"] | "SerializeItems" >> beam.Map(lambda e: e.SerializeToString()),
        "user_state": by_user["state"], "item_state": by_item["state"],
        "quarantine": all_bad | "BadToJson" >> beam.Map(lambda b: json.dumps(b._asdict())),
        "stats": _stats(counted, all_bad)}
       | "Write" >> beam_io.WriteFiles(files))


class Executor(base_beam_executor.BaseBeamExecutor):
  """Ingests one span (or the backfill) on top of the previous FeatureState."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    policy = check_policy(exec_properties.get("bad_row_policy") or "quarantine")
    window = SpanWindow.of(exec_properties)
    previous = (input_dict.get("previous_state") or [None])[0]
    half_life = half_life_days(exec_properties)
    check_previous_state(previous, window, half_life)
    paths = input_paths(exec_properties)
    check_inputs(paths)
    outputs = {key: artifact_utils.get_single_instance(output_dict[key])
               for key in ("examples", "items", "state", "report")}
    scratch = os.path.join(outputs["report"].uri, SCRATCH_DIR)
    parts = [chunks.Chunk(paths)] if window.first is not None else chunks.split(
        paths, lambda line: _parse_rating(line, window), window.period,
        int(exec_properties.get("backfill_chunk_interactions") or 0), scratch)
    known_from = "movies.csv" + ("" if previous is None else " and the previous state")
    previous_uri, chunk_stats = previous.uri if previous else None, []
    for i, part in enumerate(parts):
      if len(parts) > 1:
        progress.report(f"chunk {i + 1} of {len(parts)}: spans {part.first_span}..{part.last_span}, "
                        f"{part.ratings:,} ratings")
      # Each chunk on the state of the one before; the last writes the run's.
      state_uri = outputs["state"].uri if i == len(parts) - 1 else _scratch_path(scratch, "state", i)
      files = _files(outputs, state_uri, scratch, i, len(parts))
      with self._make_beam_pipeline() as p:
        _ingest(p, part, previous_uri, window, exec_properties, files, known_from)
      chunk_stats.append(_read_stats(files["stats"].path(0)))
      previous_uri = state_uri
    _concatenate([_scratch_path(scratch, QUARANTINE_FILE, i) for i in range(len(parts))],
                 os.path.join(outputs["report"].uri, QUARANTINE_FILE))
    tf.io.gfile.rmtree(scratch)
    stats = _merged(chunk_stats)
    _enforce_policy(policy, float(exec_properties.get("max_bad_row_fraction") or 0.0), stats,
                    os.path.dirname(paths[RATINGS]))
    _publish(outputs, window, previous, half_life)
    report = _report(exec_properties, paths, window, previous, stats,
                     os.path.join(outputs["report"].uri, QUARANTINE_FILE))
    with tf.io.gfile.GFile(os.path.join(outputs["report"].uri, REPORT_FILE), "w") as f:
      json.dump(report, f, indent=1)


_COUNT_KINDS = ("rows_read", "interactions", "items", "state", "bad_rows")


def _read_stats(path: str) -> Dict[str, Any]:
  """{'first_bad': [(file, line, description)], kind: {name: count}} from a pipeline's small stats file."""
  stats: Dict[str, Any] = {"first_bad": [], **{kind: {} for kind in _COUNT_KINDS}}
  with tf.io.gfile.GFile(path) as f:
    for line in f:
      what, key, value = json.loads(line)
      if what == "first_bad":
        stats["first_bad"] = value
      else:
        stats[key[0]][key[1]] = value
  return stats


def _merged(chunk_stats: List[Dict[str, Any]]) -> Dict[str, Any]:
  """The run's stats from its chunks': counts added up, but for the state's, the last chunk's (its state
  holds every user and item so far), and the users with interactions, which in a backfill of several
  chunks (no previous state) are all of the state's users."""
  merged: Dict[str, Any] = {kind: dict(sum((collections.Counter(s[kind]) for s in chunk_stats),
                                           collections.Counter())) for kind in _COUNT_KINDS}
  merged["first_bad"] = sorted((tuple(b) for s in chunk_stats for b in s["first_bad"]))[:_MAX_EXAMPLES_SHOWN]
  if len(chunk_stats) > 1:
    merged["state"] = chunk_stats[-1]["state"]
    merged["interactions"]["users"] = merged["state"].get("users", 0)
  return merged


def _concatenate(paths: List[str], destination: str) -> None:
  with tf.io.gfile.GFile(destination, "w") as out:
    for path in paths:
      with tf.io.gfile.GFile(path) as f:
        while block := f.read(8 << 20):
          out.write(block)


def _enforce_policy(policy: str, max_fraction: float, stats: Dict[str, Any], input_dir: str) -> None:
  """Stops the run, naming file, line and reason, when bad rows are refused or too many."""
  total_bad = sum(stats["bad_rows"].values())
  if not total_bad:
    return
  fraction = total_bad / max(sum(stats["rows_read"].values()), 1)
  if policy == "quarantine" and fraction <= max_fraction:
    return
  why = ("bad_row_policy='fail'" if policy == "fail" else
         f"{fraction:.2%} of rows are bad, above max_bad_row_fraction={max_fraction:.2%}")
  shown = "\n  ".join(description for _, _, description in stats["first_bad"])
  raise InputDataError(f"{input_dir}: {total_bad} bad input rows ({why}); first ones:\n  {shown}")


def _publish(outputs: Dict[str, types.Artifact], window: SpanWindow,
             previous: Optional[types.Artifact], half_life: float) -> None:
  """Split names, spans and formats on the output artifacts, for the downstream components and the
  resolvers that pick an artifact by span."""
  for key, split in (("examples", INTERACTIONS_SPLIT), ("items", ITEMS_SPLIT)):
    artifact = outputs[key]
    artifact.split_names = artifact_utils.encode_split_names([split])
    artifact.span = window.last
    artifact.set_int_custom_property(spans.SPAN_PROPERTY, window.last)
    artifact.set_string_custom_property("span_period", window.period)
    artifact.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    if window.first is None:
      artifact.set_int_custom_property(spans.BACKFILL_PROPERTY, 1)
  feature_state.set_properties(outputs["state"], window.last, window.period,
                               previous.uri if previous else "", half_life)
  outputs["report"].set_int_custom_property(spans.SPAN_PROPERTY, window.last)


def _report(exec_properties: Dict[str, Any], paths: Dict[str, str], window: SpanWindow,
            previous: Optional[types.Artifact], stats: Dict[str, Any], quarantine: str
            ) -> Dict[str, Any]:
  interactions = stats["interactions"]
  valid = interactions.get("valid", 0)
  return {
      "input_base": exec_properties["input_base"],
      "input_files": paths,
      "span_period": window.period,
      "span": window.last,
      "span_start": window.start(),
      "span_end": window.end(),
      "end_date": window.end_date or None,
      "previous_state": ({"uri": previous.uri, "span": feature_state.span_of(previous)}
                         if previous else None),
      "rows_read": {name: stats["rows_read"].get(name, 0) for name in FILES.values()},
      "interactions": {
          "valid": valid, "liked_fraction": round(interactions.get("liked", 0) / max(valid, 1), 4),
          **{k: interactions.get(k, 0) for k in ("users", "same_second_as_previous",
                                                  "new_item_interactions")}},
      "items": {k: stats["items"].get(k, 0) for k in (
          "new", "rated", "never_rated", "no_genres", "no_year_in_title", "with_tags", "first_rated",
          "already_known", "tags_of_known_items")},
      "state": {k: stats["state"].get(k, 0) for k in ("users", "items")},
      "bad_rows": {"total": sum(stats["bad_rows"].values()),
                   "by_reason": dict(sorted(stats["bad_rows"].items(), key=lambda kv: (-kv[1], kv[0]))),
                   "policy": exec_properties.get("bad_row_policy") or "quarantine",
                   "examples": [description for _, _, description in stats["first_bad"]]},
      "quarantine": quarantine,
  }
