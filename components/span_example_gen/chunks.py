"""A backfill cut into chunks of consecutive spans, each ingested by its own Beam pipeline on top of the
state the chunk before it wrote: what bounds SpanExampleGen's memory on an engine that holds a pipeline's
shuffles in one process (Beam's in-memory engine: one pipeline over 10 million ratings needs tens of GB).

A chunk holds at most `max_interactions` ratings (more only when one span alone holds more), so a process
holds one chunk and the state (a record per user and per item), whatever the backfill's size. Chunks end
at span boundaries: the examples and the state are those of daily runs over the same spans, which equal
one pipeline's over the whole backfill (executor_test checks both) but in two respects, as in daily runs:
a (user, movie) rated again in a later chunk is a new interaction, not a duplicate row, and a new item's
`num_ratings` counts its ratings in the chunk where it is new.

Routing, in two streaming passes over ratings.csv that keep 4 bytes per line and one int per item:
  1. each line's span when the pipeline takes it as a rating (a bad row goes to chunk 0), and so the
     ratings per span, from which the chunks are cut, and each item's first span;
  2. each line to its chunk's file, as movielens.numbered_text (its number in the original file, for the bad
     rows' report and same-second order);
  movies.csv and tags.csv: each row to the chunk of its item's first rating (chunk 0 when it has none),
  so that an item is new, with all its tags, where it is first rated, as in one pipeline.
"""

import array
import bisect
import collections
import dataclasses
import os
from typing import Callable, Dict, Iterable, Iterator, List, Tuple, Union

import tensorflow as tf

from formats import movielens, progress, spans

RATINGS, MOVIES, TAGS = movielens.RATINGS, movielens.MOVIES, movielens.TAGS
_BAD = -1  # The span array's entry for a rating the pipeline will reject.


@dataclasses.dataclass(frozen=True)
class Chunk:
  """What one Beam pipeline ingests: input split name -> file. `numbered` for a chunk of a split backfill
  (its files' lines are movielens.numbered_text), with its spans and ratings, for the progress lines."""
  paths: Dict[str, str]
  numbered: bool = False
  first_span: int = 0
  last_span: int = 0
  ratings: int = 0


def _lines(path: str) -> Iterator[movielens.CsvLine]:
  return movielens.data_lines(path, open_fn=tf.io.gfile.GFile)


def _line_count(path: str) -> int:
  with tf.io.gfile.GFile(path, "rb") as f:
    return sum(block.count(b"\n") for block in iter(lambda: f.read(8 << 20), b""))


def cut(ratings_per_span: Dict[int, int], max_interactions: int) -> List[int]:
  """The last span of each chunk: consecutive spans, a new chunk where the next span would take the
  current one past `max_interactions` ratings."""
  ordered = sorted(ratings_per_span)
  lasts, held = [], 0
  for span, following in zip(ordered, ordered[1:] + [None]):
    held += ratings_per_span[span]
    if following is None or held + ratings_per_span[following] > max_interactions:
      lasts.append(span)
      held = 0
  return lasts


def split(paths: Dict[str, str], parse_rating: Callable[[movielens.CsvLine], Union[movielens.Rating, movielens.BadRow]],
          period: str, max_interactions: int, workdir: str) -> List[Chunk]:
  """The backfill at `paths` as chunks of at most `max_interactions` ratings (0: one chunk, the files
  themselves), their files written under `workdir`. `parse_rating` is the pipeline's: a BadRow for a
  line it rejects."""
  if not max_interactions or _line_count(paths[RATINGS]) - 1 <= max_interactions:
    return [Chunk(paths)]
  span_of_line, item_first_span = array.array("i"), {}
  for line in progress.counted(_lines(paths[RATINGS]), "lines of the backfill's ratings.csv routed"):
    rating = parse_rating(line)
    span = _BAD if isinstance(rating, movielens.BadRow) else spans.span_of(rating.timestamp, period)
    span_of_line.append(span)
    if span != _BAD:
      item_first_span[rating.item_id] = min(span, item_first_span.get(rating.item_id, span))
  per_span = collections.Counter(span for span in span_of_line if span != _BAD)
  if not per_span:
    return [Chunk(paths)]
  lasts = cut(per_span, max_interactions)
  chunk_of_span = lambda span: 0 if span == _BAD else bisect.bisect_left(lasts, span)
  item_chunk = {item: chunk_of_span(span) for item, span in item_first_span.items()}
  firsts = [min(per_span)] + [last + 1 for last in lasts[:-1]]
  chunks = [Chunk({name: os.path.join(workdir, f"chunk-{i:05d}", os.path.basename(path))
                   for name, path in paths.items()}, True, first, last,
                  sum(n for span, n in per_span.items() if first <= span <= last))
            for i, (first, last) in enumerate(zip(firsts, lasts))]
  _write(chunks, RATINGS, zip(_lines(paths[RATINGS]), map(chunk_of_span, span_of_line)))
  for name, parse in ((MOVIES, movielens.parse_movie), (TAGS, movielens.parse_tag)):
    _write(chunks, name, ((line, _item_chunk(parse(line), item_chunk)) for line in _lines(paths[name])))
  return chunks


def _item_chunk(row: Union[movielens.Movie, movielens.Tag, movielens.BadRow], item_chunk: Dict[int, int]) -> int:
  return 0 if isinstance(row, movielens.BadRow) else item_chunk.get(row.item_id, 0)


def _write(chunks: List[Chunk], name: str, routed: Iterable[Tuple[movielens.CsvLine, int]]) -> None:
  """Each (line, chunk index) to that chunk's file of `name`."""
  files = []
  try:
    for chunk in chunks:
      tf.io.gfile.makedirs(os.path.dirname(chunk.paths[name]))
      files.append(tf.io.gfile.GFile(chunk.paths[name], "w"))
      files[-1].write("")  # GFile creates the file at its first write: a chunk may have no lines.
    for line, chunk in routed:
      files[chunk].write(movielens.numbered_text(line))
  finally:
    for f in files:
      f.close()
