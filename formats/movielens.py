"""The input format: a MovieLens directory (ratings.csv, movies.csv, tags.csv), its headers, bounds and rows.

Every line is either parsed into a typed row or turned into a `BadRow` that names the file, the
line and the reason, so that nothing is lost silently and nothing fails with a bare stack trace.
"""

import csv
import dataclasses
import datetime
import math
import os
import re
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from formats.errors import InputDataError

RATINGS_HEADER = ("userId", "movieId", "rating", "timestamp")
MOVIES_HEADER = ("movieId", "title", "genres")
TAGS_HEADER = ("userId", "movieId", "tag", "timestamp")
RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
TAGS_FILE = "tags.csv"
HEADERS = {RATINGS_FILE: RATINGS_HEADER, MOVIES_FILE: MOVIES_HEADER, TAGS_FILE: TAGS_HEADER}
# The parts of an input, as SpanExampleGen names its input splits, and the file each is read from.
RATINGS, MOVIES, TAGS = "ratings", "movies", "tags"
FILES = {RATINGS: RATINGS_FILE, MOVIES: MOVIES_FILE, TAGS: TAGS_FILE}

MIN_RATING = 0.5
MAX_RATING = 5.0
# Unix seconds accepted as interaction times: MovieLens started in 1995; anything past 2100 is garbage.
MIN_TIMESTAMP = int(datetime.datetime(1995, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
MAX_TIMESTAMP = int(datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
NO_GENRES = "(no genres listed)"
_TITLE_YEAR = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


class BadRow(NamedTuple):
  file: str
  line: int
  reason: str
  text: str

  def describe(self) -> str:
    return f"{self.file}:{self.line}: {self.reason}: {self.text[:120]!r}"


class Rating(NamedTuple):
  user_id: int
  item_id: int
  rating: float
  timestamp: int
  line: int


class Movie(NamedTuple):
  item_id: int
  title: str
  year: int  # 0 when the title carries no year
  genres: Tuple[str, ...]
  line: int


class Tag(NamedTuple):
  item_id: int
  tag: str
  timestamp: int


@dataclasses.dataclass(frozen=True)
class CsvLine:
  file: str
  number: int  # 1-based, as an editor shows it
  text: str


def _numbered(path: str, raws: Iterable[bytes], first: int) -> Iterator[CsvLine]:
  name = path.rsplit("/", 1)[-1]
  for number, raw in enumerate(raws, start=first):
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    if text.strip():
      yield CsvLine(name, number, text)


def numbered_text(line: CsvLine) -> str:
  """A line of a file whose lines carry their number in another file (`FilePiece.numbered`)."""
  return f"{line.number},{line.text}\n"


def _renumbered(path: str, raws: Iterable[bytes]) -> Iterator[CsvLine]:
  """The lines of numbered_text, each with the number it carries."""
  name = path.rsplit("/", 1)[-1]
  for raw in raws:
    number, _, text = raw.decode("utf-8", errors="replace").rstrip("\r\n").partition(",")
    yield CsvLine(name, int(number), text)


def read_numbered_lines(path: str, open_fn=open) -> Iterator[CsvLine]:
  """Yields the non-empty lines of a text file with their 1-based line numbers."""
  with open_fn(path, "rb") as f:
    yield from _numbered(path, f, 1)


def data_lines(path: str, open_fn=open) -> Iterator[CsvLine]:
  """read_numbered_lines after the header (checked by check_files or check_header before)."""
  lines = read_numbered_lines(path, open_fn)
  next(lines, None)
  return lines


@dataclasses.dataclass(frozen=True)
class FilePiece:
  """Bytes [start, end) of a file, whole lines, the first of them line `first_line`: what one worker
  reads, so that no worker holds a large file whole."""
  path: str
  start: int
  end: int
  first_line: int
  index: int
  pieces: int
  numbered: bool = False  # Its lines are numbered_text: no header, each carries its own number.


def file_pieces(path: str, piece_bytes: int, open_fn=open, numbered: bool = False) -> List[FilePiece]:
  """The file cut after the first line end past every `piece_bytes` bytes; one pass counting lines."""
  bounds, line = [], 1
  with open_fn(path, "rb") as f:
    while block := f.read(piece_bytes):
      block += f.readline()  # To the end of the line the block ends in.
      start = bounds[-1][1] if bounds else 0
      bounds.append((start, start + len(block), line))
      line += block.count(b"\n")
  return [FilePiece(path, start, end, first, i, len(bounds), numbered)
          for i, (start, end, first) in enumerate(bounds)]


def read_piece_lines(piece: FilePiece, open_fn=open) -> Iterator[CsvLine]:
  """The non-empty lines of a piece, numbered as read_numbered_lines numbers them."""
  with open_fn(piece.path, "rb") as f:
    f.seek(piece.start)
    data = f.read(piece.end - piece.start)
  raws = data.split(b"\n")
  if raws[-1] == b"":  # After the piece's last line end.
    raws.pop()
  yield from (_renumbered(piece.path, raws) if piece.numbered else
              _numbered(piece.path, raws, piece.first_line))


def _fields(line: CsvLine, header: Sequence[str]) -> Union[List[str], BadRow]:
  try:
    fields = next(csv.reader([line.text]))
  except csv.Error as e:
    return BadRow(line.file, line.number, f"unparsable CSV ({e})", line.text)
  if tuple(fields) == tuple(header):
    return BadRow(line.file, line.number, "duplicate header", line.text)
  if len(fields) != len(header):
    return BadRow(line.file, line.number,
                  f"wrong column count ({len(fields)}, expected {len(header)})", line.text)
  missing = [h for h, v in zip(header, fields) if not v.strip()]
  if missing:
    return BadRow(line.file, line.number, f"missing field {', '.join(missing)}", line.text)
  return fields


class _Rejected(ValueError):
  """Why a field makes its row bad."""


def _positive_int(value: str, name: str) -> int:
  try:
    number = int(value)
  except ValueError:
    number = 0
  if number <= 0:
    raise _Rejected(f"{name} is not a positive integer")
  return number


def _timestamp(value: str) -> int:
  try:
    timestamp = int(value)
  except ValueError as e:
    raise _Rejected("unparsable timestamp") from e
  if not MIN_TIMESTAMP <= timestamp < MAX_TIMESTAMP:
    raise _Rejected("timestamp outside 1995..2100")
  return timestamp


def _rating(value: str) -> float:
  try:
    rating = float(value)
  except ValueError as e:
    raise _Rejected("rating is not a number") from e
  if not (math.isfinite(rating) and MIN_RATING <= rating <= MAX_RATING):
    raise _Rejected(f"rating out of range [{MIN_RATING}, {MAX_RATING}]")
  return rating


def _parse(line: CsvLine, header: Sequence[str], build) -> Union[NamedTuple, BadRow]:
  """Splits a line into fields and builds a typed row; any rejected field makes it a BadRow."""
  fields = _fields(line, header)
  if isinstance(fields, BadRow):
    return fields
  try:
    return build(fields)
  except _Rejected as e:
    return BadRow(line.file, line.number, str(e), line.text)


def check_header(line: CsvLine, header: Sequence[str]) -> Optional[str]:
  """Returns why the first line of a file is not the expected header, or None."""
  fields = next(csv.reader([line.text]), [])
  if tuple(f.strip() for f in fields) != tuple(header):
    return (f"{line.file}:{line.number}: expected header {','.join(header)!r}, "
            f"found {line.text[:120]!r}")
  return None


def parse_rating(line: CsvLine) -> Union[Rating, BadRow]:
  return _parse(line, RATINGS_HEADER, lambda f: Rating(
      _positive_int(f[0], "userId"), _positive_int(f[1], "movieId"), _rating(f[2]),
      _timestamp(f[3]), line.number))


def _movie(fields: List[str], number: int) -> Movie:
  title = fields[1].strip()
  year_match = _TITLE_YEAR.search(title)
  genres = tuple(g for g in fields[2].split("|") if g and g != NO_GENRES)
  return Movie(_positive_int(fields[0], "movieId"), title,
               int(year_match.group(1)) if year_match else 0, genres, number)


def parse_movie(line: CsvLine) -> Union[Movie, BadRow]:
  return _parse(line, MOVIES_HEADER, lambda f: _movie(f, line.number))


def parse_tag(line: CsvLine) -> Union[Tag, BadRow]:
  return _parse(line, TAGS_HEADER, lambda f: Tag(
      _positive_int(f[1], "movieId"), f[2].strip().lower(), _timestamp(f[3])))


def check_files(data_root: str) -> Dict[str, str]:
  """Paths of the MovieLens files present (tags.csv is optional); InputDataError for a missing
  required file, an empty file or a wrong header."""
  if not os.path.isdir(data_root):
    raise InputDataError(f"{data_root}: no such directory (a MovieLens directory holds "
                         f"{RATINGS_FILE}, {MOVIES_FILE} and optionally {TAGS_FILE})")
  paths = {}
  for name, header in HEADERS.items():
    path = os.path.join(data_root, name)
    if not os.path.exists(path):
      if name == TAGS_FILE:
        continue
      raise InputDataError(f"{path}: required file is missing; {data_root} holds: "
                           f"{', '.join(sorted(os.listdir(data_root))) or 'nothing'}")
    first = next(read_numbered_lines(path), None)
    if first is None:
      raise InputDataError(f"{path}: file is empty (expected the header {','.join(header)!r})")
    problem = check_header(first, header)
    if problem:
      raise InputDataError(f"{path}: {problem}")
    paths[name] = path
  return paths


def _int_fields(text: str, width: int, columns: Sequence[Tuple[str, int]]) -> Union[Tuple[int, ...], str]:
  # Quotes only occur around titles and tags: splitting the other lines is several times faster.
  try:
    fields = next(csv.reader([text]), []) if '"' in text else text.split(",")
  except csv.Error as e:
    return f"unparsable CSV ({e})"
  if len(fields) != width:
    return f"wrong column count ({len(fields)}, expected {width})"
  values = []
  for column, index in columns:
    try:
      value = int(fields[index])
    except ValueError:
      return f"{column} is not an integer"
    if column == "timestamp" and not MIN_TIMESTAMP <= value < MAX_TIMESTAMP:
      return "timestamp outside 1995..2100"
    if column != "timestamp" and value <= 0:
      return f"{column} is not a positive integer"
    values.append(value)
  return tuple(values)


def read_keys(path: str, header: Sequence[str],
              columns: Sequence[str]) -> Iterator[Tuple[CsvLine, Union[Tuple[int, ...], str]]]:
  """Each data line of a file whose header `check_files` accepted, with the integer values of
  `columns` or the reason they cannot be read. Only these columns are checked: the ingestion
  quarantines rows with other problems."""
  indexed = [(column, header.index(column)) for column in columns]
  for line in data_lines(path):
    yield line, _int_fields(line.text, len(header), indexed)
