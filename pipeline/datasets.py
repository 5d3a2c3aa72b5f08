"""Datasets made from a MovieLens directory: the same data at other dates, for fewer users, scaled up, or
as a denser stream.

A copy shifted by 20 years checks that nothing depends on the bundled data's dates (1996-2018). A stream
compressed so that each month from a date on becomes one day shows the loop at a daily cadence on real
ratings: ml-latest-small's own days are too sparse (median 3 ratings) to train and evaluate on daily.
"""

import os
import random
import shutil
import datetime
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from formats import movielens, spans

# Calendar years approximated by Julian years: exact enough to move data by whole periods.
_SECONDS_PER_YEAR = int(365.25 * 86400)


def _user_ids(src_dir: str) -> List[int]:
  """The readable user ids of src_dir's ratings.csv, sorted."""
  ratings = movielens.check_files(src_dir)[movielens.RATINGS_FILE]
  keys = movielens.read_keys(ratings, movielens.HEADERS[movielens.RATINGS_FILE], ("userId",))
  return sorted({user[0] for _, user in keys if not isinstance(user, str)})


def _kept_users(src_dir: str, user_fraction: float, seed: int) -> Optional[Set[int]]:
  if user_fraction >= 1:
    return None
  users = _user_ids(src_dir)
  return set(random.Random(seed).sample(users, round(user_fraction * len(users))))


# (user id, timestamp) of a row -> the (user id, timestamp) of each copy written: none drops the row.
Copies = Callable[[int, int], Iterable[Tuple[int, int]]]


def _map_file(src: str, dst: str, header: Sequence[str], copies: Copies) -> None:
  if header[0] != "userId" or header[-1] != "timestamp":
    raise ValueError(f"{src}: expected userId first and timestamp last, got {','.join(header)}")
  with open(dst, "w", encoding="utf-8", newline="") as f:
    f.write(",".join(header) + "\n")
    for line, keys in movielens.read_keys(src, header, ("userId", "timestamp")):
      if isinstance(keys, str):
        f.write(line.text + "\n")  # Bad rows stay as they are, for the ingestion to quarantine.
        continue
      middle = line.text[line.text.index(","):line.text.rindex(",") + 1]  # Verbatim between the two.
      for user, timestamp in copies(*keys):
        f.write(f"{user}{middle}{timestamp}\n")


def shifted_movielens(src_dir: str, dst_dir: str, years: float = 20, user_fraction: float = 1.0,
                      seed: int = 0) -> str:
  """Copies a MovieLens directory with every rating and tag `years` x 365.25 days later, keeping
  the ratings and tags of round(user_fraction x users) users drawn with `seed` (unparsable rows
  are copied as they are, movies.csv whole). Returns dst_dir."""
  shift = round(years * _SECONDS_PER_YEAR)
  users = _kept_users(src_dir, user_fraction, seed)
  return _mapped_movielens(
      src_dir, dst_dir, lambda user, t: [(user, t + shift)] if users is None or user in users else [])


def scaled_movielens(src_dir: str, dst_dir: str, factor: int, max_shift_days: float = 3, seed: int = 0,
                     since: Optional[str] = None) -> str:
  """Copies a MovieLens directory with every user's ratings and tags `factor` times, for measuring how
  cost grows with data: copy c of user u is user u + c x (largest user id + 1), copy 0 the original; each
  other copy's timestamps move by one offset of at most `max_shift_days` drawn per user and copy (with
  `seed`), kept inside each row's calendar month so that month spans hold `factor` times their ratings.
  With `since` (a date), only the rows from that day on are copied `factor` times, the earlier ones once:
  a span `factor` times larger after the same backfill. The same movies (movies.csv whole). Returns dst_dir."""
  if factor < 1:
    raise ValueError(f"factor must be at least 1, got {factor}")
  origin = _seconds(since) if since else None
  stride = max(_user_ids(src_dir), default=0) + 1
  reach = int(max_shift_days * 86400)
  offsets: Dict[int, np.ndarray] = {}

  def copies(user: int, timestamp: int) -> Iterable[Tuple[int, int]]:
    if user not in offsets:
      offsets[user] = np.random.default_rng([seed, user]).integers(-reach, reach + 1, size=factor)
      offsets[user][0] = 0
    if origin is not None and timestamp < origin:
      return [(user, timestamp)]
    first, following = _month_bounds(timestamp)
    return [(user + c * stride, int(min(max(timestamp + offsets[user][c], first), following - 1)))
            for c in range(factor)]

  return _mapped_movielens(src_dir, dst_dir, copies)


def _month_bounds(timestamp: int) -> Tuple[int, int]:
  """The first second of timestamp's calendar month (UTC) and of the next."""
  month = spans.span_of(timestamp, "month")
  return tuple((spans.span_start(month + n, "month") - datetime.date(1970, 1, 1)).days * 86400 for n in (0, 1))


def _mapped_movielens(src_dir: str, dst_dir: str, copies: Copies) -> str:
  paths = movielens.check_files(src_dir)
  os.makedirs(dst_dir, exist_ok=True)
  shutil.copyfile(paths[movielens.MOVIES_FILE], os.path.join(dst_dir, movielens.MOVIES_FILE))
  for file in (movielens.RATINGS_FILE, movielens.TAGS_FILE):
    if file in paths:
      _map_file(paths[file], os.path.join(dst_dir, file), movielens.HEADERS[file], copies)
  return dst_dir


def _seconds(date: str) -> int:
  """The first second (UTC) of an ISO date."""
  try:
    return int(datetime.datetime.fromisoformat(date).replace(tzinfo=datetime.timezone.utc).timestamp())
  except ValueError:
    raise ValueError(f"expected a date such as 2016-01-01, got {date!r}") from None


def month_per_day_stream(src_dir: str, dst_dir: str, start_date: str) -> str:
  """Copies a MovieLens directory with every rating and tag from `start_date` (the first of a month) on
  moved so that each calendar month becomes one day, keeping order within and across months; earlier
  rows stay as they are (the backfill). Day N after start_date then holds month N's ratings."""
  origin = _seconds(start_date)
  if datetime.datetime.fromtimestamp(origin, datetime.timezone.utc).day != 1:
    raise ValueError(f"start_date must be the first of a month, got {start_date}")

  def new_time(timestamp: int) -> int:
    if timestamp < origin:
      return timestamp
    first, following = _month_bounds(timestamp)
    months = spans.span_of(timestamp, "month") - spans.span_of(origin, "month")
    return origin + months * 86400 + int((timestamp - first) / (following - first) * 86400)

  return _mapped_movielens(src_dir, dst_dir, lambda user, t: [(user, new_time(t))])


def main(argv: Optional[Sequence[str]] = None) -> None:
  """python -m pipeline.datasets {shifted,scaled,month_per_day} --src DIR --dst DIR [--years Y]
  [--user_fraction F] [--factor K] [--start_date D]"""
  import argparse
  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument("kind", choices=("shifted", "scaled", "month_per_day"))
  parser.add_argument("--src", required=True)
  parser.add_argument("--dst", required=True)
  parser.add_argument("--years", type=float, default=20)
  parser.add_argument("--user_fraction", type=float, default=1.0)
  parser.add_argument("--factor", type=int, default=10, help="scaled: copies of each user")
  parser.add_argument("--start_date", help="month_per_day: the first of the month from which months become days; "
                                           "scaled: the day from which rows are scaled (earlier ones copied once)")
  args = parser.parse_args(argv)
  if args.kind == "shifted":
    print(shifted_movielens(args.src, args.dst, args.years, args.user_fraction))
  elif args.kind == "scaled":
    if args.factor < 1:
      parser.error(f"--factor must be at least 1, got {args.factor}")
    print(scaled_movielens(args.src, args.dst, args.factor, since=args.start_date))
  elif not args.start_date:
    parser.error("month_per_day needs --start_date")
  else:
    print(month_per_day_stream(args.src, args.dst, args.start_date))


if __name__ == "__main__":
  main()
