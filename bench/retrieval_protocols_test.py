"""The leave-one-out and per-span protocols on tiny ratings tables, at two sets of dates."""

import datetime

import numpy as np
import pytest

import conftest
from bench import retrieval_protocols as protocols
from formats.errors import InputDataError

YEARS = (2018, 2041)  # the same table at other dates: nothing may depend on the dates


def _ts(year: int, month: int, day: int, second: int = 0) -> int:
  return int(datetime.datetime(year, month, day, tzinfo=datetime.timezone.utc).timestamp()) + second


def _ratings(tmp_path, rows) -> protocols.Ratings:
  text = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},4.0,{t}\n" for u, i, t in rows)
  return protocols.read_ratings(conftest.write_movielens(tmp_path, ratings=text, tags=None))


def _lists(arrays):
  return [a.tolist() for a in arrays]


def _loo_rows(year):
  t = _ts(year, 3, 1)
  # User 1's ratings are out of order in the file, and items 2 and 3 share a timestamp (file order decides).
  return [(1, 8, t + 10), (1, 1, t), (1, 2, t + 5), (1, 3, t + 5), (1, 4, t + 9),
          (2, 2, t), (2, 6, t + 1), (2, 3, t + 2), (2, 1, t + 3), (2, 7, t + 4),
          (3, 1, t), (3, 8, t + 1)]


@pytest.mark.parametrize("year", YEARS)
def test_leave_one_out_splits_each_users_last_two_items(tmp_path, year):
  loo = protocols.leave_one_out(_ratings(tmp_path, _loo_rows(year)))
  assert loo.train.users.tolist() == [1, 2, 3]  # user 3 has 2 interactions: training only
  assert _lists(loo.train.items) == [[1, 2, 3], [2, 6, 3], [1, 8]]
  assert loo.train.context.tolist() == [0, 0, 0]
  t = _ts(year, 3, 1)
  assert _lists(loo.train.timestamps) == [[t, t + 5, t + 5], [t, t + 1, t + 2], [t, t + 1]]
  validation, test = loo.validation, loo.test
  assert (validation.user_ids.tolist(), validation.targets.tolist()) == ([1, 2], [4, 1])
  assert _lists(validation.histories) == [[1, 2, 3], [2, 6, 3]]
  assert validation.new_item.tolist() == [True, False]  # 4 is never trained on, 1 is
  assert (test.user_ids.tolist(), test.targets.tolist(), test.timestamps.tolist()) == ([1, 2], [8, 7],
                                                                                   [t + 10, t + 4])
  assert _lists(test.histories) == [[1, 2, 3, 4], [2, 6, 3, 1]]
  assert test.new_item.tolist() == [False, True]  # user 3 trains on 8
  assert (loo.catalog.tolist(), loo.users.tolist()) == ([1, 2, 3, 4, 6, 7, 8], [1, 2, 3])


def test_leave_one_out_options_and_bad_input(tmp_path):
  ratings = _ratings(tmp_path, _loo_rows(2018))
  short = protocols.leave_one_out(ratings, min_user_interactions=3, max_history=2)
  assert _lists(short.test.histories) == [[3, 4], [3, 1]]
  with pytest.raises(InputDataError, match="no user has 6 interactions"):
    protocols.leave_one_out(ratings, min_user_interactions=6)
  with pytest.raises(ValueError, match="at least 3"):
    protocols.leave_one_out(ratings, min_user_interactions=2)


def _span_rows(year):
  return [(1, 1, _ts(year, 1, 5)), (1, 2, _ts(year, 1, 10)), (2, 2, _ts(year, 1, 7)),  # the backfill
          (1, 3, _ts(year, 2, 3)), (3, 3, _ts(year, 2, 20)),  # February
          (1, 4, _ts(year, 3, 2)), (2, 5, _ts(year, 3, 4)), (2, 1, _ts(year, 3, 4)),  # March
          (1, 6, _ts(year, 5, 1))]  # May; April holds no rating


@pytest.mark.parametrize("year", YEARS)
def test_per_span_scores_each_span_before_training_on_it(tmp_path, year):
  ratings = _ratings(tmp_path, _span_rows(year))
  stream = protocols.per_span(ratings, "month", f"{year}-02-01", max_spans=2, min_interactions_per_span=1)
  assert (stream.period, stream.start_date) == ("month", f"{year}-02-01")
  assert stream.backfill.users.tolist() == [1, 2]
  assert _lists(stream.backfill.items) == [[1, 2], [2]]
  february, march = stream.spans
  assert (february.start, march.start, march.span - february.span) == (f"{year}-02-01", f"{year}-03-01", 1)
  assert (february.examples.user_ids.tolist(), february.examples.targets.tolist()) == ([1, 3], [3, 3])
  assert _lists(february.examples.histories) == [[1, 2], []]
  assert february.examples.new_item.tolist() == [True, True]
  assert (february.train.users.tolist(), _lists(february.train.items)) == ([1, 3], [[1, 2, 3], [3]])
  assert february.train.context.tolist() == [2, 0]
  assert (march.examples.user_ids.tolist(), march.examples.targets.tolist()) == ([1, 2, 2], [4, 5, 1])
  assert _lists(march.examples.histories) == [[1, 2, 3], [2], [2, 5]]
  assert march.examples.new_item.tolist() == [True, True, False]
  assert march.examples.timestamps.tolist() == [_ts(year, 3, 2), _ts(year, 3, 4), _ts(year, 3, 4)]
  assert (_lists(march.train.items), march.train.context.tolist()) == ([[1, 2, 3, 4], [2, 5, 1]], [3, 1])
  assert (stream.catalog.tolist(), stream.users.tolist()) == ([1, 2, 3, 4, 5], [1, 2, 3])


@pytest.mark.parametrize("year", YEARS)
def test_per_span_defaults_from_the_data(tmp_path, year):
  ratings = _ratings(tmp_path, _span_rows(year))
  stream = protocols.per_span(ratings, max_history=1, min_interactions_per_span=1)
  # data_profile.choose keeps 14 spans after the start where it can, and the backfill non-empty.
  assert stream.start_date == f"{year}-02-01"
  assert stream.reasons[1].startswith(f"start_date {year}-02-01: the backfill before it holds 33.3%")
  assert [s.start for s in stream.spans] == [f"{year}-02-01", f"{year}-03-01", f"{year}-05-01"]
  assert _lists(stream.spans[1].examples.histories) == [[3], [2], [5]]
  assert stream.spans[2].train.context.tolist() == [1]


def test_per_span_refuses_bad_dates_and_files(tmp_path):
  ratings = _ratings(tmp_path / "good", _span_rows(2018))
  with pytest.raises(InputDataError, match="2018-02-03 is not the first day of a month span"):
    protocols.per_span(ratings, "month", "2018-02-03", min_interactions_per_span=1)
  with pytest.raises(InputDataError, match="after the last rating"):
    protocols.per_span(ratings, "month", "2019-01-01", min_interactions_per_span=1)
  with pytest.raises(InputDataError, match="too sparse"):
    protocols.per_span(ratings, "month")
  with pytest.raises(InputDataError, match="no such directory"):
    protocols.read_ratings(str(tmp_path / "missing"))
  with pytest.raises(InputDataError, match="no row with a readable userId"):
    _ratings(tmp_path / "bad", [(1, "x", 5)])


def test_unreadable_rows_are_counted_and_left_out(tmp_path):
  ratings = _ratings(tmp_path, [(1, 1, _ts(2018, 1, 1)), (1, "x", _ts(2018, 1, 2)), (2, 3, 7)])
  assert (ratings.users.tolist(), ratings.items.tolist(), ratings.unparsed) == ([1], [1], 2)
  assert np.array_equal(protocols.span_numbers(ratings.timestamps, "month"), [576])
