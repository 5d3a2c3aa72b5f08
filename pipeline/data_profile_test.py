"""Profiling ratings.csv and choosing the span period, start date, replay and v0 cutoff."""

import pathlib

import pytest

import conftest
from formats import movielens, spans
from formats.errors import InputDataError
from pipeline import data_profile

# One rating a day, each of a new movie, for the 20 weeks from Monday 2018-01-01 to 2018-05-20.
DAILY_RATINGS = "userId,movieId,rating,timestamp\n" + "".join(
    f"1,{i + 1},4.0,{conftest.DAY0 + i * conftest.DAY + 3600}\n" for i in range(140))
DAILY_MOVIES = "movieId,title,genres\n" + "".join(f"{i + 1},Movie {i + 1} (2000),Drama\n" for i in range(140))
WEEK0 = spans.span_of(conftest.DAY0, "week")


@pytest.fixture(name="daily")
def _daily(tmp_path: pathlib.Path) -> data_profile.DataProfile:
  return data_profile.profile(conftest.write_movielens(tmp_path, DAILY_MOVIES, DAILY_RATINGS, None))


def test_profile_counts_ratings_per_day_and_first_ratings_per_movie(tmp_path):
  ratings = conftest.TINY_RATINGS + "3,abc,4.0,1514764800\n" + f"3,4,1.0,{conftest.DAY0 + 4 * conftest.DAY}\n"
  data = data_profile.profile(conftest.write_movielens(tmp_path, ratings=ratings))
  day0 = spans.span_of(conftest.DAY0, "day")
  assert (data.ratings, data.unparsed) == (6, 1)
  assert data.daily == {day0: 2, day0 + 1: 2, day0 + 2: 1, day0 + 4: 1}
  assert data.item_first_rated == {1: conftest.DAY0, 2: conftest.DAY0 + 1, 3: conftest.DAY0 + conftest.DAY,
                                   4: conftest.DAY0 + 4 * conftest.DAY}
  assert (data.first_date.isoformat(), data.last_date.isoformat()) == ("2018-01-01", "2018-01-05")
  assert data.span_counts("day") == {day0: 2, day0 + 1: 2, day0 + 2: 1, day0 + 3: 0, day0 + 4: 1}
  assert data.span_counts("month") == {spans.span_of(conftest.DAY0, "month"): 6}


def test_choose_takes_the_finest_dense_period_and_a_start_with_70_percent_before_it(daily):
  choice = data_profile.choose(daily, min_interactions_per_span=5, min_spans=5)
  assert (choice.span_period, choice.start_date, choice.v0_cutoff) == ("week", "2018-04-09", "2018-02-19")
  assert choice.replay_spans == list(range(WEEK0 + 14, WEEK0 + 20))
  assert choice.reasons == [
      "week spans: the 18 weeks 2018-01-15..2018-05-14 hold a median of 7 ratings per week (>= 5 wanted); "
      "days hold a median of 1",
      "start_date 2018-04-09: the backfill before it holds 70.0% of the 140 ratings (70% wanted) and 6 week "
      "spans follow from it, to 2018-05-14 (at least 5 wanted)",
      f"replay spans {WEEK0 + 14}..{WEEK0 + 19} (2018-04-09..2018-05-14): 42 ratings, 7 to 7 per week",
      "v0_cutoff 2018-02-19: the day after the median first-rating date of the 98 items first rated "
      "before 2018-04-09"]


def test_choose_starts_earlier_to_leave_min_spans_after_the_start(daily):
  choice = data_profile.choose(daily, min_interactions_per_span=5, min_spans=8, replay_length=2)
  assert (choice.start_date, choice.replay_spans) == ("2018-03-26", [WEEK0 + 12, WEEK0 + 13])
  assert choice.reasons[1] == (
      "start_date 2018-03-26: the backfill before it holds 60.0% of the 140 ratings (70% wanted) and 8 week "
      "spans follow from it, to 2018-05-14 (at least 8 wanted)")


def test_a_given_start_date_measures_density_from_it_and_keeps_periods_it_starts(daily):
  # 2018-03-01 starts a day and a month, not a week; days hold 1 rating, months 30.
  choice = data_profile.choose(daily, start_date="2018-03-01", min_interactions_per_span=5)
  assert (choice.span_period, choice.start_date) == ("month", "2018-03-01")
  assert choice.reasons[0] == ("month spans: the 3 months 2018-03-01..2018-05-01 hold a median of 30 ratings "
                               "per month (>= 5 wanted); days hold a median of 1; weeks hold a median of 7 "
                               "but 2018-03-01 does not start a week")
  assert choice.reasons[1] == (
      "start_date 2018-03-01: the backfill before it holds 42.1% of the 140 ratings (70% wanted) and 3 month "
      "spans follow from it, to 2018-05-01 (at least 14 wanted)")


@pytest.mark.parametrize("kwargs, message", [
    (dict(span_period="day"), "day spans would hold a median of 1 ratings (the 18 days "
     "2018-05-03..2018-05-20): too sparse to train and evaluate on (min_interactions_per_span=5); "
     "use week or month"),
    (dict(span_period="week", min_interactions_per_span=100), "week spans would hold a median of 7 ratings "
     "(the 18 weeks 2018-01-15..2018-05-14): too sparse to train and evaluate on "
     "(min_interactions_per_span=100); no period holds enough"),
    (dict(min_interactions_per_span=100), "even month spans hold a median of 30 ratings (the 5 months "
     "2018-01-01..2018-05-01): too few to train and evaluate on (min_interactions_per_span=100)"),
    (dict(start_date="2030-01-01"), "start_date 2030-01-01 is after the last rating (2018-05-20)"),
    (dict(start_date="2018-01-01"), "start_date 2018-01-01 is on or before the first rating (2018-01-01): "
     "the backfill would be empty"),
    (dict(span_period="week", start_date="2018-04-10"), "start_date 2018-04-10 is not the first day of a "
     "week span; use 2018-04-09 or 2018-04-16"),
    (dict(start_date="2018-04-10", min_interactions_per_span=7), "start_date 2018-04-10 is not the first day "
     "of a week span; use 2018-04-09 or 2018-04-16"),
    (dict(start_date="10/04/2018"), "start_date '10/04/2018' is not an ISO date (YYYY-MM-DD)"),
])
def test_choose_explains_what_is_wrong_with_the_given_period_or_dates(daily, kwargs, message):
  with pytest.raises(InputDataError) as error:
    data_profile.choose(daily, **{"min_interactions_per_span": 5, **kwargs})
  assert str(error.value) == message


def test_densest_window_has_the_most_ratings_among_runs_with_a_rating_each_span(tmp_path):
  # Days 0-2: 1, 1, 5 ratings; day 3: none; days 4-6: 2, 2, 2.
  days = [0, 1, 2, 2, 2, 2, 2, 4, 4, 5, 5, 6, 6]
  ratings = "userId,movieId,rating,timestamp\n" + "".join(
      f"{i + 1},1,4.0,{conftest.DAY0 + d * conftest.DAY}\n" for i, d in enumerate(days))
  data = data_profile.profile(conftest.write_movielens(tmp_path, ratings=ratings))
  day0 = spans.span_of(conftest.DAY0, "day")
  assert data_profile.densest_window(data, "day", 3) == {day0: 1, day0 + 1: 1, day0 + 2: 5}
  assert data_profile.densest_window(data, "day", 3, min_per_span=2) == {
      day0 + 4: 2, day0 + 5: 2, day0 + 6: 2}
  assert data_profile.densest_window(data, "day", 4) is None


@pytest.mark.parametrize("files, message", [
    (dict(movies=None), "{root}/movies.csv: required file is missing; {root} holds: ratings.csv, tags.csv"),
    (dict(ratings=""),
     "{root}/ratings.csv: file is empty (expected the header 'userId,movieId,rating,timestamp')"),
    (dict(tags="user,movie,tag,time\n"), "{root}/tags.csv: tags.csv:1: expected header "
     "'userId,movieId,tag,timestamp', found 'user,movie,tag,time'"),
])
def test_check_files_names_the_file_and_what_exists(tmp_path, files, message):
  root = conftest.write_movielens(tmp_path / "ml", **files)
  with pytest.raises(InputDataError) as error:
    movielens.check_files(root)
  assert str(error.value) == message.format(root=root)


def test_command_prints_the_choice_or_the_problem(tmp_path, capsys):
  root = conftest.write_movielens(tmp_path, DAILY_MOVIES, DAILY_RATINGS, None)
  assert data_profile.main(["--data_root", root, "--min_interactions_per_span", "5"]) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0] == f"{root}: 140 ratings from 2018-01-01 to 2018-05-20 (0 unparsable rows), 140 movies rated"
  assert out[-3] == ("  densest 14 consecutive days with ratings in each: 2018-05-07..2018-05-20, "
                     "14 ratings, per day: 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1")
  assert data_profile.main(["--data_root", root, "--span_period", "day"]) == 2
  assert capsys.readouterr().err.startswith("data_profile: day spans would hold a median of 1 ratings")


def test_the_default_start_moves_past_a_sparse_stretch():
  # 70% of the ratings are before span 1, but spans 1..3 hold 5, 2 and 14: the loop starts at span 3,
  # the first whose next three spans hold a median of at least 100 (14, 150, 200 -> 150).
  counts = {0: 3000, 1: 5, 2: 2, 3: 14, 4: 150, 5: 200, 6: 180, 7: 170, 8: 160}
  assert data_profile._default_start(counts, "month", 0.7, min_spans=3, minimum=100) == 3
  assert data_profile._default_start(counts, "month", 0.7, min_spans=3, minimum=1) == 1
  # Never so late that fewer than min_spans spans follow.
  assert data_profile._default_start(counts, "month", 0.7, min_spans=8, minimum=100) == 1
