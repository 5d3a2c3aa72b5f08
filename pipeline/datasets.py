"""Datasets made from a MovieLens directory: the same data at other dates, for fewer users, or as a denser
stream.

A copy shifted by 20 years checks that nothing depends on the bundled data's dates (1996-2018). A stream
compressed so that each month from a date on becomes one day shows the loop at a daily cadence on real
ratings: ml-latest-small's own days are too sparse (median 3 ratings) to train and evaluate on daily.
"""

import os
import random
import shutil
import datetime
from typing import Callable, Optional, Sequence, Set

from pipeline import data_profile

# Calendar years approximated by Julian years: exact enough to move data by whole periods.
_SECONDS_PER_YEAR = int(365.25 * 86400)


def _kept_users(ratings_path: str, user_fraction: float, seed: int) -> Optional[Set[int]]:
  if user_fraction >= 1:
    return None
  keys = data_profile.read_keys(ratings_path, data_profile.HEADERS[data_profile.RATINGS_FILE], ("userId",))
  users = sorted({user[0] for _, user in keys if not isinstance(user, str)})
  return set(random.Random(seed).sample(users, round(user_fraction * len(users))))


def _map_file(src: str, dst: str, header: Sequence[str], new_time: Callable[[int], int],
              users: Optional[Set[int]]) -> None:
  with open(dst, "w", encoding="utf-8", newline="") as f:
    f.write(",".join(header) + "\n")
    for line, keys in data_profile.read_keys(src, header, ("userId", "timestamp")):
      if isinstance(keys, str):
        f.write(line.text + "\n")  # Bad rows stay as they are, for the ingestion to quarantine.
      elif users is None or keys[0] in users:
        # The timestamp is the last column of ratings.csv and tags.csv: the rest stays verbatim.
        f.write(f"{line.text[:line.text.rindex(',') + 1]}{new_time(keys[1])}\n")


def shifted_movielens(src_dir: str, dst_dir: str, years: float = 20, user_fraction: float = 1.0,
                      seed: int = 0) -> str:
  """Copies a MovieLens directory with every rating and tag `years` x 365.25 days later, keeping
  the ratings and tags of round(user_fraction x users) users drawn with `seed` (unparsable rows
  are copied as they are, movies.csv whole). Returns dst_dir."""
  shift = round(years * _SECONDS_PER_YEAR)
  return _mapped_movielens(src_dir, dst_dir, lambda t: t + shift, user_fraction, seed)


def _mapped_movielens(src_dir: str, dst_dir: str, new_time: Callable[[int], int], user_fraction: float = 1.0,
                      seed: int = 0) -> str:
  paths = data_profile.check_files(src_dir)
  os.makedirs(dst_dir, exist_ok=True)
  shutil.copyfile(paths[data_profile.MOVIES_FILE], os.path.join(dst_dir, data_profile.MOVIES_FILE))
  users = _kept_users(paths[data_profile.RATINGS_FILE], user_fraction, seed)
  for file in (data_profile.RATINGS_FILE, data_profile.TAGS_FILE):
    if file in paths:
      _map_file(paths[file], os.path.join(dst_dir, file), data_profile.HEADERS[file], new_time, users)
  return dst_dir


def month_per_day_stream(src_dir: str, dst_dir: str, start_date: str) -> str:
  """Copies a MovieLens directory with every rating and tag from `start_date` (the first of a month) on
  moved so that each calendar month becomes one day, keeping order within and across months; earlier
  rows stay as they are (the backfill). Day N after start_date then holds month N's ratings."""
  start = datetime.datetime.fromisoformat(start_date).replace(tzinfo=datetime.timezone.utc)
  if start.day != 1:
    raise ValueError(f"start_date must be the first of a month, got {start_date}")
  origin = int(start.timestamp())

  def new_time(timestamp: int) -> int:
    if timestamp < origin:
      return timestamp
    date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    month_start = date.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month_start + datetime.timedelta(days=32)).replace(day=1)
    months = (date.year - start.year) * 12 + date.month - start.month
    fraction = (timestamp - month_start.timestamp()) / (next_month - month_start).total_seconds()
    return origin + months * 86400 + int(fraction * 86400)

  return _mapped_movielens(src_dir, dst_dir, new_time)


def main(argv: Optional[Sequence[str]] = None) -> None:
  """python -m pipeline.datasets {shifted,month_per_day} --src DIR --dst DIR [--years Y] [--start_date D]"""
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument("kind", choices=("shifted", "month_per_day"))
  parser.add_argument("--src", required=True)
  parser.add_argument("--dst", required=True)
  parser.add_argument("--years", type=float, default=20)
  parser.add_argument("--user_fraction", type=float, default=1.0)
  parser.add_argument("--start_date", help="month_per_day: the first of the month from which months become days")
  args = parser.parse_args(argv)
  if args.kind == "shifted":
    print(shifted_movielens(args.src, args.dst, args.years, args.user_fraction))
  elif not args.start_date:
    parser.error("month_per_day needs --start_date")
  else:
    print(month_per_day_stream(args.src, args.dst, args.start_date))


if __name__ == "__main__":
  main()
