"""Chooses the span period, the first span and a replay from a MovieLens directory's own figures.

`profile` streams ratings.csv once, keeping only counts per day and each movie's first rating time,
so it works for 100k to 30M movielens. `choose` picks, or checks when the user gives them, the span
period (the finest whose spans hold enough ratings to train and evaluate on) and the start date
(a backfill with most of the history, and enough spans after it), and says why in `reasons`.

  python -m pipeline.data_profile --data_root DIR [--span_period P] [--start_date YYYY-MM-DD]
"""

import argparse
import collections
import dataclasses
import datetime
import statistics
import sys
from typing import Dict, List, Optional, Tuple

from formats import movielens
from formats import spans
from formats.errors import InputDataError

PLURALS = {"day": "days", "week": "weeks", "month": "months"}
_SECONDS_PER_DAY = 86400
# Consecutive spans shown by the command: two weeks of daily runs.
_WINDOW_SPANS = 14

# Below this median per span, a span is too sparse to train and evaluate a ranking model on.
MIN_INTERACTIONS_PER_SPAN = 100
# The first spans after the chosen start (the main command replays 3) must be dense too.
_FIRST_SPANS_DENSE = 3


def day_to_span(day: int, period: str) -> int:
  return spans.span_of(day * _SECONDS_PER_DAY, period)


@dataclasses.dataclass(frozen=True)
class DataProfile:
  """What the span choices need from ratings.csv."""
  source: str
  ratings: int  # rows with a readable movieId and timestamp
  unparsed: int  # rows without
  daily: Dict[int, int]  # day span -> ratings, days with ratings only
  item_first_rated: Dict[int, int]  # movieId -> timestamp of its first rating

  @property
  def first_date(self) -> datetime.date:
    return spans.span_start(min(self.daily), "day")

  @property
  def last_date(self) -> datetime.date:
    return spans.span_start(max(self.daily), "day")

  def span_counts(self, period: str) -> Dict[int, int]:
    """Ratings per span from the first span with ratings to the last, empty spans included."""
    counts = collections.Counter()
    for day, count in self.daily.items():
      counts[day_to_span(day, period)] += count
    return {span: counts[span] for span in range(min(counts), max(counts) + 1)}


def profile(data_root: str) -> DataProfile:
  """One streaming pass over ratings.csv (after checking the directory's files)."""
  path = movielens.check_files(data_root)[movielens.RATINGS_FILE]
  daily, first_rated = collections.Counter(), {}
  unparsed = 0
  for _, keys in movielens.read_keys(path, movielens.RATINGS_HEADER, ("timestamp", "movieId")):
    if isinstance(keys, str):
      unparsed += 1
      continue
    timestamp, item = keys
    daily[timestamp // _SECONDS_PER_DAY] += 1
    first_rated[item] = min(timestamp, first_rated.get(item, timestamp))
  if not daily:
    raise InputDataError(f"{path}: no row with a readable movieId and timestamp "
                         f"({unparsed} unparsable rows)")
  return DataProfile(data_root, sum(daily.values()), unparsed, dict(daily), first_rated)


@dataclasses.dataclass(frozen=True)
class Choice:
  span_period: str
  start_date: str  # ISO date, the first day of the first span; earlier data is the backfill
  replay_spans: List[int]  # the first spans from start_date, for a short replay of the daily loop
  v0_cutoff: str  # ISO date: RQ-VAE v0 sees the items first rated before it
  reasons: List[str]


def _figure(value: float) -> str:
  return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _date_error(name: str, date: str) -> InputDataError:
  return InputDataError(f"{name} {date!r} is not an ISO date (YYYY-MM-DD)")


def check_span_start(date: str, period: str, name: str) -> int:
  """The span that `date` starts; InputDataError when it is not the first day of a span."""
  try:
    span = spans.span_of_date(date, period)
  except ValueError as e:
    raise _date_error(name, date) from e
  if spans.span_start(span, period).isoformat() != date:
    raise InputDataError(
        f"{name} {date} is not the first day of a {period} span; use "
        f"{spans.span_start(span, period).isoformat()} or {spans.span_start(span + 1, period).isoformat()}")
  return span


def _check_in_data(data: DataProfile, start_date: str) -> None:
  try:
    date = datetime.date.fromisoformat(start_date)
  except ValueError as e:
    raise _date_error("start_date", start_date) from e
  if date <= data.first_date:
    raise InputDataError(f"start_date {start_date} is on or before the first rating "
                         f"({data.first_date.isoformat()}): the backfill would be empty")
  if date > data.last_date:
    raise InputDataError(f"start_date {start_date} is after the last rating ({data.last_date.isoformat()})")


def check_start_date(data: DataProfile, start_date: str, period: str) -> int:
  """The first span of a user's start_date, which must start a span with ratings before it and
  not be after the last rating."""
  _check_in_data(data, start_date)
  return check_span_start(start_date, period, "start_date")


def _recent(data: DataProfile, period: str, start_date: Optional[str], count: int) -> Dict[int, int]:
  """The spans whose density matters: the first `count` from start_date, else the last `count`."""
  counts = data.span_counts(period)
  if start_date:
    first = spans.span_of_date(start_date, period)
    return {s: n for s, n in counts.items() if first <= s < first + count}
  return dict(list(counts.items())[-count:])


@dataclasses.dataclass(frozen=True)
class _Density:
  period: str
  median: float
  first: int
  last: int

  def describe(self) -> str:
    return (f"the {self.last - self.first + 1} {PLURALS[self.period]} "
            f"{spans.span_start(self.first, self.period)}..{spans.span_start(self.last, self.period)}")


def _density(data: DataProfile, period: str, start_date: Optional[str], count: int) -> _Density:
  recent = _recent(data, period, start_date, count)
  return _Density(period, statistics.median(recent.values()), min(recent), max(recent))


def _starts_span(date: Optional[str], period: str) -> bool:
  return not date or spans.span_start(spans.span_of_date(date, period), period).isoformat() == date


def _choose_period(densities: Dict[str, _Density], span_period: Optional[str], start_date: Optional[str],
                   minimum: int) -> str:
  dense = [p for p in spans.PERIODS if densities[p].median >= minimum]
  if span_period:
    spans.check_period(span_period)
    if span_period in dense:
      return span_period
    density = densities[span_period]
    coarser = [p for p in dense if spans.PERIODS.index(p) > spans.PERIODS.index(span_period)]
    advice = f"use {' or '.join(coarser)}" if coarser else "no period holds enough"
    raise InputDataError(
        f"{span_period} spans would hold a median of {_figure(density.median)} ratings "
        f"({density.describe()}): too sparse to train and evaluate on (min_interactions_per_span="
        f"{minimum}); {advice}")
  aligned = [p for p in dense if _starts_span(start_date, p)]
  if dense and not aligned:
    check_span_start(start_date, dense[0], "start_date")
  if not aligned:
    month = densities["month"]
    raise InputDataError(
        f"even month spans hold a median of {_figure(month.median)} ratings ({month.describe()}): "
        f"too few to train and evaluate on (min_interactions_per_span={minimum})")
  return aligned[0]


def _default_start(counts: Dict[int, int], period: str, fraction: float, min_spans: int, minimum: int) -> int:
  """The first span whose backfill holds `fraction` of the ratings, moved later past spans whose next
  `_FIRST_SPANS_DENSE` hold a median below `minimum` ratings (the loop's first runs score and train on
  them: a sparse start blesses nothing), then earlier if fewer than `min_spans` spans would follow (but
  never to the first span: the backfill must hold some)."""
  total, before = sum(counts.values()), 0
  first, last = min(counts), max(counts)
  if first == last:
    raise InputDataError(f"every rating falls in the {period} span of {spans.span_start(first, period)}: "
                         f"nothing for a backfill and spans after it; use a finer span_period")
  start = last
  for span, count in counts.items():
    if span > first and before >= fraction * total:
      start = span
      break
    before += count
  while start < last and statistics.median(
      counts.get(s, 0) for s in range(start, start + _FIRST_SPANS_DENSE)) < minimum:
    start += 1
  return max(first + 1, min(start, last - min_spans + 1))


def _period_reason(densities: Dict[str, _Density], period: str, start_date: Optional[str],
                   minimum: int) -> str:
  chosen = densities[period]
  rejected = "".join(
      f"; {PLURALS[p]} hold a median of {_figure(densities[p].median)}"
      + ("" if _starts_span(start_date, p) else f" but {start_date} does not start a {p}")
      for p in spans.PERIODS[:spans.PERIODS.index(period)])
  return (f"{period} spans: {chosen.describe()} hold a median of {_figure(chosen.median)} ratings "
          f"per {period} (>= {minimum:,} wanted){rejected}")


def _start_reason(counts: Dict[int, int], start: int, period: str, fraction: float, min_spans: int) -> str:
  total = sum(counts.values())
  before = sum(n for s, n in counts.items() if s < start)
  after = max(counts) - start + 1
  return (f"start_date {spans.span_start(start, period)}: the backfill before it holds "
          f"{before / total:.1%} of the {total:,} ratings ({fraction:.0%} wanted) and {after:,} "
          f"{period} spans follow from it, to {spans.span_start(max(counts), period)} "
          f"(at least {min_spans} wanted)")


def _replay_reason(counts: Dict[int, int], replay: List[int], period: str) -> str:
  figures = [counts[s] for s in replay]
  return (f"replay spans {replay[0]}..{replay[-1]} ({spans.span_start(replay[0], period)}.."
          f"{spans.span_start(replay[-1], period)}): {sum(figures):,} ratings, "
          f"{min(figures):,} to {max(figures):,} per {period}")


def _v0_cutoff(data: DataProfile, start_date: str) -> Tuple[str, str]:
  """The day after the median first-rating date of the backfill's items: v0 sees about half of them, and
  at least one (v0 trains on the items first rated before the cut-off)."""
  start = datetime.datetime.fromisoformat(start_date).replace(tzinfo=datetime.timezone.utc).timestamp()
  firsts = sorted(t for t in data.item_first_rated.values() if t < start)
  cutoff = spans.span_start(statistics.median_low(firsts) // _SECONDS_PER_DAY + 1, "day").isoformat()
  return cutoff, (f"v0_cutoff {cutoff}: the day after the median first-rating date of the {len(firsts):,} "
                  f"items first rated before {start_date}")


def choose(data: DataProfile, span_period: Optional[str] = None, start_date: Optional[str] = None,
           min_interactions_per_span: int = MIN_INTERACTIONS_PER_SPAN, min_spans: int = 14,
           backfill_fraction: float = 0.7, recent_spans: int = 18, replay_length: int = 7) -> Choice:
  """The span period, start date, replay spans and v0 cutoff for `data`, each with its reason.

  The period is the finest whose recent spans (the last `recent_spans`, or the first from a given
  start_date) hold a median of at least `min_interactions_per_span` ratings. The start date is the
  first span start with `backfill_fraction` of the ratings before it, moved later past a sparse stretch
  and earlier when needed so that `min_spans` spans follow. A given period or start date is checked, never replaced:
  InputDataError says what is wrong with it and what the data holds.
  """
  if start_date:
    _check_in_data(data, start_date)
  densities = {p: _density(data, p, start_date, recent_spans) for p in spans.PERIODS}
  period = _choose_period(densities, span_period, start_date, min_interactions_per_span)
  counts = data.span_counts(period)
  start = (check_start_date(data, start_date, period) if start_date
           else _default_start(counts, period, backfill_fraction, min_spans, min_interactions_per_span))
  first_day = spans.span_start(start, period).isoformat()
  replay = [s for s in counts if start <= s < start + replay_length]
  cutoff, cutoff_reason = _v0_cutoff(data, first_day)
  return Choice(period, first_day, replay, cutoff, [
      _period_reason(densities, period, start_date, min_interactions_per_span),
      _start_reason(counts, start, period, backfill_fraction, min_spans),
      _replay_reason(counts, replay, period), cutoff_reason])


def densest_window(data: DataProfile, period: str, length: int,
                   min_per_span: int = 1) -> Optional[Dict[int, int]]:
  """The `length` consecutive spans, each with at least `min_per_span` ratings, that hold the most
  ratings (the latest on ties): span -> ratings; None when no such run exists."""
  counts = list(data.span_counts(period).items())
  best, best_total = None, -1
  for i in range(len(counts) - length + 1):
    window = counts[i:i + length]
    total = sum(n for _, n in window)
    if min(n for _, n in window) >= min_per_span and total >= best_total:
      best, best_total = dict(window), total
  return best


def _describe_window(window: Optional[Dict[int, int]], period: str) -> str:
  if window is None:
    return f"no {_WINDOW_SPANS} consecutive {PLURALS[period]} all hold a rating"
  first, last = min(window), max(window)
  return (f"densest {len(window)} consecutive {PLURALS[period]} with ratings in each: "
          f"{spans.span_start(first, period)}..{spans.span_start(last, period)}, "
          f"{sum(window.values()):,} ratings, per {period}: {', '.join(map(str, window.values()))}")


def _args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_root", required=True, help="MovieLens-format directory")
  parser.add_argument("--span_period", choices=spans.PERIODS, help="check this period, else choose")
  parser.add_argument("--start_date", help="check this first span's date (YYYY-MM-DD), else choose")
  parser.add_argument("--min_interactions_per_span", type=int, default=100)
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = _args(argv)
  try:
    data = profile(args.data_root)
    choice = choose(data, args.span_period, args.start_date, args.min_interactions_per_span)
  except InputDataError as e:
    print(f"data_profile: {e}", file=sys.stderr)
    return 2
  print(f"{data.source}: {data.ratings:,} ratings from {data.first_date} to {data.last_date} "
        f"({data.unparsed:,} unparsable rows), {len(data.item_first_rated):,} movies rated")
  for reason in choice.reasons:
    print(f"  {reason}")
  for period in spans.PERIODS:
    print(f"  {_describe_window(densest_window(data, period, _WINDOW_SPANS), period)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
