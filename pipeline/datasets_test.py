"""tests/datasets.py: shifted and user-subset MovieLens copies."""

import datetime
import pathlib

import pytest

import conftest
from pipeline import data_profile
from pipeline import datasets

SHIFT = 631152000  # 20 x 365.25 days
TAGS = conftest.TINY_TAGS + f'2,2,"heist, classic",{conftest.DAY0 + 7}\n'
RATINGS = conftest.TINY_RATINGS + "3,1,4.0,not-a-time\n" + f"4,3,1.0,{conftest.DAY0 + 5}\n"


def _copy(tmp_path: pathlib.Path, **kwargs) -> pathlib.Path:
  src = conftest.write_movielens(tmp_path / "src", ratings=RATINGS, tags=TAGS)
  return pathlib.Path(datasets.shifted_movielens(src, str(tmp_path / "dst"), **kwargs))


def test_every_timestamp_moves_twenty_years_and_the_rest_stays_verbatim(tmp_path):
  dst = _copy(tmp_path)
  d0 = conftest.DAY0 + SHIFT
  day = conftest.DAY
  assert (dst / "ratings.csv").read_text() == (
      f"userId,movieId,rating,timestamp\n1,1,4.0,{d0}\n1,2,3.0,{d0 + 1}\n1,3,5.0,{d0 + day}\n"
      f"2,2,4.5,{d0 + day + 5}\n2,1,2.0,{d0 + 2 * day}\n3,1,4.0,not-a-time\n4,3,1.0,{d0 + 5}\n")
  assert (dst / "tags.csv").read_text() == (
      f'userId,movieId,tag,timestamp\n1,1,Pixar,{d0}\n2,1,pixar,{d0 + 3}\n2,1,toys,{d0 + 4}\n'
      f'2,2,"heist, classic",{d0 + 7}\n')
  assert (dst / "movies.csv").read_text() == conftest.TINY_MOVIES
  assert data_profile.profile(str(dst)).first_date.isoformat() == "2038-01-01"


def test_a_user_fraction_keeps_the_ratings_and_tags_of_the_drawn_users(tmp_path):
  dst = _copy(tmp_path, years=0, user_fraction=0.5, seed=0)
  # random.Random(0).sample([1, 2, 4], 2) draws users 2 and 4; the unparsable row stays.
  d0, day = conftest.DAY0, conftest.DAY
  assert (dst / "ratings.csv").read_text() == (
      f"userId,movieId,rating,timestamp\n2,2,4.5,{d0 + day + 5}\n2,1,2.0,{d0 + 2 * day}\n"
      f"3,1,4.0,not-a-time\n4,3,1.0,{d0 + 5}\n")
  assert (dst / "tags.csv").read_text() == (
      f'userId,movieId,tag,timestamp\n2,1,pixar,{d0 + 3}\n2,1,toys,{d0 + 4}\n2,2,"heist, classic",{d0 + 7}\n')


def test_without_tags_no_tags_file_is_written(tmp_path):
  src = conftest.write_movielens(tmp_path / "src", tags=None)
  dst = pathlib.Path(datasets.shifted_movielens(src, str(tmp_path / "dst"), years=1))
  assert sorted(p.name for p in dst.iterdir()) == ["movies.csv", "ratings.csv"]


def test_month_per_day_stream_maps_each_month_to_one_day(tmp_path):
  jan, feb_mid, dec = 1451606400, 1451606400 + (31 + 14) * 86400, 1420070400  # 2016-01-01, 2016-02-15, 2015-01-01
  src = conftest.write_movielens(tmp_path / "src", ratings=f"userId,movieId,rating,timestamp\n1,1,4.0,{dec}\n"
                                 f"1,2,3.0,{jan}\n2,1,5.0,{feb_mid}\n", tags=None)
  dst = datasets.month_per_day_stream(src, str(tmp_path / "dst"), "2016-01-01")
  lines = (pathlib.Path(dst) / "ratings.csv").read_text().splitlines()
  # February has 29 days in 2016: the 15th at 00:00 is 14/29 of the month, so 14/29 of day 1.
  assert lines == ["userId,movieId,rating,timestamp", f"1,1,4.0,{dec}", f"1,2,3.0,{jan}",
                   f"2,1,5.0,{jan + 86400 + int(14 / 29 * 86400)}"]


def _rows(path: pathlib.Path):
  return [line.split(",") for line in path.read_text().splitlines()[1:]]


def test_scaled_copies_each_user_factor_times_under_new_ids(tmp_path):
  src = conftest.write_movielens(tmp_path / "src", ratings=RATINGS, tags=TAGS)
  dst = pathlib.Path(datasets.scaled_movielens(src, str(tmp_path / "dst"), factor=3, max_shift_days=0))
  # The largest user id is 4: copy c of user u is u + 5c; the unparsable row stays once.
  d0, day = conftest.DAY0, conftest.DAY
  assert (dst / "ratings.csv").read_text().splitlines() == [
      "userId,movieId,rating,timestamp",
      f"1,1,4.0,{d0}", f"6,1,4.0,{d0}", f"11,1,4.0,{d0}",
      f"1,2,3.0,{d0 + 1}", f"6,2,3.0,{d0 + 1}", f"11,2,3.0,{d0 + 1}",
      f"1,3,5.0,{d0 + day}", f"6,3,5.0,{d0 + day}", f"11,3,5.0,{d0 + day}",
      f"2,2,4.5,{d0 + day + 5}", f"7,2,4.5,{d0 + day + 5}", f"12,2,4.5,{d0 + day + 5}",
      f"2,1,2.0,{d0 + 2 * day}", f"7,1,2.0,{d0 + 2 * day}", f"12,1,2.0,{d0 + 2 * day}",
      "3,1,4.0,not-a-time",
      f"4,3,1.0,{d0 + 5}", f"9,3,1.0,{d0 + 5}", f"14,3,1.0,{d0 + 5}"]
  assert (dst / "tags.csv").read_text().splitlines()[-3:] == [
      f'2,2,"heist, classic",{d0 + 7}', f'7,2,"heist, classic",{d0 + 7}', f'12,2,"heist, classic",{d0 + 7}']
  assert (dst / "movies.csv").read_text() == conftest.TINY_MOVIES


def test_scaled_copies_move_by_one_offset_per_user_within_three_days_and_the_month(tmp_path):
  src = conftest.write_movielens(tmp_path / "src")
  dst = pathlib.Path(datasets.scaled_movielens(src, str(tmp_path / "dst"), factor=4, seed=1))
  original = _rows(pathlib.Path(src) / "ratings.csv")
  copies = _rows(dst / "ratings.csv")
  assert len(copies) == 4 * len(original)
  offsets = {}
  for row, (user, movie, rating, timestamp) in enumerate(original):
    for c in range(4):
      got = copies[4 * row + c]
      assert got[:3] == [str(int(user) + 3 * c), movie, rating]
      moved = int(got[3]) - int(timestamp)
      assert abs(moved) <= 3 * conftest.DAY and int(got[3]) >= conftest.DAY0  # DAY0: a month's first second
      offsets.setdefault((user, c), set()).add(moved)
  assert all(moves == {0} for (_, c), moves in offsets.items() if c == 0)
  # DAY0 is 2018-01-01 00:00: a move back would leave January, so it stays; user 2 has no such row.
  assert all(len(offsets[("2", c)]) == 1 for c in range(4))
  assert len({next(iter(offsets[("2", c)])) for c in range(1, 4)}) == 3


def test_scaled_since_a_date_copies_the_earlier_rows_once(tmp_path):
  src = conftest.write_movielens(tmp_path / "src", ratings=RATINGS, tags=TAGS)
  since = datetime.datetime.fromtimestamp(conftest.DAY0 + conftest.DAY, datetime.timezone.utc).date().isoformat()
  dst = pathlib.Path(datasets.scaled_movielens(src, str(tmp_path / "dst"), factor=2, max_shift_days=0, since=since))
  d0, day = conftest.DAY0, conftest.DAY
  assert (dst / "ratings.csv").read_text().splitlines() == [
      "userId,movieId,rating,timestamp",
      f"1,1,4.0,{d0}", f"1,2,3.0,{d0 + 1}",
      f"1,3,5.0,{d0 + day}", f"6,3,5.0,{d0 + day}",
      f"2,2,4.5,{d0 + day + 5}", f"7,2,4.5,{d0 + day + 5}",
      f"2,1,2.0,{d0 + 2 * day}", f"7,1,2.0,{d0 + 2 * day}",
      "3,1,4.0,not-a-time",
      f"4,3,1.0,{d0 + 5}"]
  with pytest.raises(ValueError, match="expected a date such as 2016-01-01, got 'May'"):
    datasets.scaled_movielens(src, str(tmp_path / "bad"), factor=2, since="May")


def test_scaled_refuses_a_factor_below_one(tmp_path):
  src = conftest.write_movielens(tmp_path / "src")
  with pytest.raises(ValueError, match="factor must be at least 1, got 0"):
    datasets.scaled_movielens(src, str(tmp_path / "dst"), factor=0)
