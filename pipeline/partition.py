"""Splits a MovieLens directory into the per-span directories that the daily ingestion reads.

  python -m pipeline.partition --data_root DIR --output OUT [--span_period day|week|month]
      [--start_date YYYY-MM-DD] [--end_date YYYY-MM-DD] [--overwrite]

OUT/backfill/ holds what precedes start_date and OUT/span-<N>/ each span N (formats/spans.py
numbering) from start_date's to the last with data, before end_date when given, empty spans
included. Every directory holds ratings.csv, movies.csv and tags.csv with their headers, the rows
verbatim and in source order. A movie goes to the directory of its first rating (the backfill if
never rated: it is in the catalog from the start); a tag goes with its time, or with its movie
when that comes later, so that a new item's content arrives with it. Rows without a readable
movieId and timestamp go to OUT/unparsed.csv; any other problem is left to the ingestion's
quarantine. Without --span_period or --start_date, `data_profile.choose` picks them and says why.
Everything is written under OUT/.partial and moved into place at the end; OUT/partition.json,
written last, records the choices and the rows per directory.
"""

import argparse
import collections
import csv
import json
import os
import re
import shutil
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from formats import movielens, spans
from formats.errors import InputDataError
from pipeline import data_profile

BACKFILL = "backfill"
UNPARSED_FILE = "unparsed.csv"
SUMMARY_FILE = "partition.json"
SPAN_PREFIX = "span-"
# The span folders as a TFX input pattern: the ingestion's driver resolves {SPAN} at run time.
SPAN_PATTERN = SPAN_PREFIX + "{SPAN}"
_PARTIAL = ".partial"
_OWN_ENTRY = re.compile(r"(backfill|span-\d+|unparsed\.csv|partition\.json|\.partial)")
# Below every span number: an unrated movie goes to the backfill, its tags with their own time.
_NEVER_RATED = -1
# Rows buffered before appending them to their files: bounds memory and the number of file opens.
_BUFFER_BYTES = 64 << 20
_SPANS_PER_LINE = 10
# File -> the integer columns that place its rows.
_KEYS = {movielens.RATINGS_FILE: ("timestamp", "movieId"), movielens.MOVIES_FILE: ("movieId",),
         movielens.TAGS_FILE: ("timestamp", "movieId")}


def span_directory(span: int) -> str:
  return f"{SPAN_PREFIX}{span}"


def _kind(file: str) -> str:
  return file[:-len(".csv")]


class _Layout:
  """The directory of each row: backfill before the first span, none from the end span on."""

  def __init__(self, period: str, first: int, end: Optional[int], item_first_rated: Dict[int, int]):
    self.period, self.first, self.end = period, first, end
    self.item_span = {item: spans.span_of(t, period) for item, t in item_first_rated.items()}

  def _directory(self, span: int) -> Optional[str]:
    if self.end is not None and span >= self.end:
      return None
    return BACKFILL if span < self.first else span_directory(span)

  def directory(self, file: str, keys: Tuple[int, ...]) -> Optional[str]:
    if file == movielens.MOVIES_FILE:
      return self._directory(self.item_span.get(keys[0], _NEVER_RATED))
    timestamp, item = keys
    span = spans.span_of(timestamp, self.period)
    if file == movielens.TAGS_FILE:
      span = max(span, self.item_span.get(item, _NEVER_RATED))
    return self._directory(span)


class _Writer:
  """Appends rows to the directories' CSV files through one bounded buffer, so that a ratings.csv
  of millions of rows spread over thousands of spans needs neither its rows in memory nor a file
  open per span."""

  def __init__(self, root: str):
    self.root = root
    self.counts: Dict[str, Dict[str, int]] = {}
    self._buffers: Dict[Tuple[str, str], List[str]] = collections.defaultdict(list)
    self._size = 0

  def add_directory(self, directory: str) -> None:
    if directory in self.counts:
      return
    os.makedirs(os.path.join(self.root, directory))
    for file, header in movielens.HEADERS.items():
      with open(os.path.join(self.root, directory, file), "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
    self.counts[directory] = {_kind(file): 0 for file in movielens.HEADERS}

  def add(self, directory: str, file: str, text: str) -> None:
    self.add_directory(directory)
    self.counts[directory][_kind(file)] += 1
    self._buffers[(directory, file)].append(text + "\n")
    self._size += len(text) + 1
    if self._size >= _BUFFER_BYTES:
      self.flush()

  def flush(self) -> None:
    for (directory, file), lines in self._buffers.items():
      with open(os.path.join(self.root, directory, file), "a", encoding="utf-8", newline="") as f:
        f.writelines(lines)
    self._buffers.clear()
    self._size = 0


def _listing(names: List[str]) -> str:
  shown = sorted(names)[:5]
  return ", ".join(shown) + (f" and {len(names) - len(shown)} more" if len(names) > len(shown) else "")


def _check_output(output: str, overwrite: bool) -> None:
  """Refuses a non-empty output, and with overwrite one holding files a partition does not write."""
  if os.path.exists(output) and not os.path.isdir(output):
    raise InputDataError(f"--output {output} is a file, not a directory")
  entries = os.listdir(output) if os.path.isdir(output) else []
  if entries and not overwrite:
    raise InputDataError(f"--output {output} is not empty (it holds {_listing(entries)}); "
                         f"choose an empty directory or pass --overwrite")
  foreign = [e for e in entries if not _OWN_ENTRY.fullmatch(e)]
  if foreign:
    raise InputDataError(f"--overwrite replaces only what a partition writes, and {output} also "
                         f"holds {_listing(foreign)}")


def _span_choice(data: data_profile.DataProfile, span_period: Optional[str], start_date: Optional[str],
                 log: Callable[[str], None]) -> Tuple[str, str]:
  if span_period and start_date:
    return span_period, start_date
  choice = data_profile.choose(data, span_period, start_date)
  for reason in choice.reasons:
    log(f"chosen: {reason}")
  return choice.span_period, choice.start_date


def _end_span(end_date: Optional[str], start_date: str, first: int, period: str) -> Optional[int]:
  if not end_date:
    return None
  end = data_profile.check_span_start(end_date, period, "end_date")
  if end <= first:
    raise InputDataError(f"end_date {end_date} must be after start_date {start_date}")
  return end


def _copy_file(path: str, file: str, layout: _Layout, writer: _Writer, unparsed) -> collections.Counter:
  """Copies each row of one file to its directory; counts unparsable rows and rows from end_date on."""
  skipped = collections.Counter()
  for line, keys in movielens.read_keys(path, movielens.HEADERS[file], _KEYS[file]):
    if isinstance(keys, str):
      unparsed.writerow((file, line.number, keys, line.text))
      skipped["unparsed"] += 1
      continue
    directory = layout.directory(file, keys)
    if directory is None:
      skipped["after_end_date"] += 1
    else:
      writer.add(directory, file, line.text)
  return skipped


def _copy(paths: Dict[str, str], layout: _Layout, writer: _Writer,
          unparsed_path: str) -> Dict[str, Dict[str, int]]:
  """Copies every file; {'unparsed' | 'after_end_date': {kind: rows}}."""
  skipped = {file: collections.Counter() for file in _KEYS}
  with open(unparsed_path, "w", encoding="utf-8", newline="") as f:
    unparsed = csv.writer(f, lineterminator="\n")
    unparsed.writerow(("file", "line", "reason", "text"))
    for file, path in paths.items():
      skipped[file] = _copy_file(path, file, layout, writer, unparsed)
  writer.flush()
  return {key: {_kind(file): counts[key] for file, counts in skipped.items()}
          for key in ("unparsed", "after_end_date")}


def _spans_written(writer: _Writer) -> List[int]:
  return [int(d[len(SPAN_PREFIX):]) for d in writer.counts if d != BACKFILL]


def _publish(output: str, partial: str, names: List[str]) -> None:
  """Replaces what a previous partition left (checked to be only that) and moves the new files in."""
  for name in os.listdir(output):
    if name != _PARTIAL:
      path = os.path.join(output, name)
      if os.path.isdir(path):
        shutil.rmtree(path)
      else:
        os.remove(path)
  for name in names:
    os.replace(os.path.join(partial, name), os.path.join(output, name))
  os.rmdir(partial)


def _figures(counts: List[Dict[str, int]]) -> str:
  return ", ".join(f"{sum(c[k] for c in counts):,} {k}" for k in map(_kind, movielens.HEADERS))


def _log_spans(summary: Dict[str, Any], log: Callable[[str], None]) -> None:
  period, directories = summary["span_period"], summary["directories"]
  log(f"{BACKFILL} (before {summary['start_date']}): {_figures([directories[BACKFILL]])}")
  first, last = summary["spans"]
  for low in range(first, last + 1, _SPANS_PER_LINE):
    high = min(low + _SPANS_PER_LINE - 1, last)
    label = f"{span_directory(low)} ({spans.span_start(low, period)})" if low == high else (
        f"{span_directory(low)}..{high} ({spans.span_start(low, period)}..{spans.span_start(high, period)})")
    log(f"{label}: {_figures([directories[span_directory(s)] for s in range(low, high + 1)])}")


def partition(data_root: str, output: str, span_period: Optional[str] = None,
              start_date: Optional[str] = None, end_date: Optional[str] = None, overwrite: bool = False,
              log: Callable[[str], None] = print, data: Optional[data_profile.DataProfile] = None
              ) -> Dict[str, Any]:
  """Writes the backfill and span directories of `data_root` under `output`; returns partition.json's
  content. `data`: data_root's profile, when the caller has it (a pass over ratings.csv saved).
  InputDataError for missing files, wrong headers, dates outside the data, or an output that is not
  empty (without overwrite)."""
  paths = movielens.check_files(data_root)
  _check_output(output, overwrite)
  data = data or data_profile.profile(data_root)
  span_period, start_date = _span_choice(data, span_period, start_date, log)
  first = data_profile.check_start_date(data, start_date, span_period)
  end = _end_span(end_date, start_date, first, span_period)
  partial = os.path.join(output, _PARTIAL)
  shutil.rmtree(partial, ignore_errors=True)
  os.makedirs(partial)
  writer = _Writer(partial)
  skipped = _copy(paths, _Layout(span_period, first, end, data.item_first_rated), writer,
                  os.path.join(partial, UNPARSED_FILE))
  last = max(_spans_written(writer), default=first)
  # Every span of the range exists, header-only when empty, so a daily run never misses its input.
  directories = [BACKFILL] + [span_directory(s) for s in range(first, last + 1)]
  for directory in directories:
    writer.add_directory(directory)
  summary = {"source": os.path.abspath(data_root), "span_period": span_period, "start_date": start_date,
             "end_date": end_date, "spans": [first, last],
             "directories": {d: writer.counts[d] for d in directories}, **skipped}
  with open(os.path.join(partial, SUMMARY_FILE), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1)
  # partition.json moves in last: its presence says the partition is complete.
  _publish(output, partial, directories + [UNPARSED_FILE, SUMMARY_FILE])
  _log_spans(summary, log)
  log(f"Partitioned {data_root} into {output}: {BACKFILL} and {last - first + 1:,} {span_period} spans "
      f"{first}..{last} ({spans.span_start(first, span_period)}..{spans.span_start(last, span_period)}); "
      f"{_figures(list(summary['directories'].values()))}; {sum(skipped['unparsed'].values()):,} unparsable "
      f"rows in {UNPARSED_FILE}; {sum(skipped['after_end_date'].values()):,} rows from end_date on left out")
  return summary


def _args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_root", required=True, help="MovieLens-format directory")
  parser.add_argument("--output", required=True, help="an empty (or new) directory")
  parser.add_argument("--span_period", choices=spans.PERIODS, help="default: chosen from the data")
  parser.add_argument("--start_date", help="first day of the first span (YYYY-MM-DD); default: chosen")
  parser.add_argument("--end_date", help="first day of the first span left out (YYYY-MM-DD)")
  parser.add_argument("--overwrite", action="store_true", help="replace a previous partition in --output")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = _args(argv)
  try:
    partition(args.data_root, args.output, args.span_period, args.start_date, args.end_date, args.overwrite)
  except InputDataError as e:
    print(f"partition: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())


def ensure_partitioned(data_root: str, output: str, span_period: str, start_date: str,
                       log: Callable[[str], None] = print, data: Optional[data_profile.DataProfile] = None
                       ) -> Dict[str, Any]:
  """The partition of `data_root` under `output`, written again only when the settings differ or an input
  file changed since: re-running the main command keeps the span files, and so TFX's cache."""
  summary_path = os.path.join(output, SUMMARY_FILE)
  if os.path.exists(summary_path):
    with open(summary_path, encoding="utf-8") as f:
      summary = json.load(f)
    inputs = movielens.check_files(data_root).values()
    if (summary["source"], summary["span_period"], summary["start_date"]) == (
        os.path.abspath(data_root), span_period, start_date) and all(
            os.path.getmtime(p) < os.path.getmtime(summary_path) for p in inputs):
      log(f"Input already partitioned in {output} ({summary['span_period']} spans {summary['spans'][0]}.."
          f"{summary['spans'][1]})")
      return summary
  return partition(data_root, output, span_period, start_date, overwrite=True, log=log, data=data)
