import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils

import conftest
from formats.errors import InputDataError
from components.movielens_example_gen import executor, features
from formats import spans

def _read(artifact, split):
  files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*"))
  return [tf.train.Example.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _value(example, name):
  feature = example.features.feature[name]
  return list(feature.int64_list.value or feature.float_list.value or feature.bytes_list.value)


def test_interactions_by_day_with_history_and_current_item(tiny_movielens, tmp_path):
  examples, items, report = conftest.run_movielens_example_gen(tiny_movielens, tmp_path)
  day0 = spans.span_of(conftest.DAY0, "day")
  names = artifact_utils.decode_split_names(examples.split_names)
  assert names == [spans.split_name(day0 + d) for d in range(3)]
  assert examples.span == day0 + 2
  by_user_item = {}
  for name in names:
    for e in _read(examples, name):
      by_user_item[(_value(e, "user_id")[0], _value(e, "item_id")[0])] = (name, e)
  assert len(by_user_item) == 5
  name, third = by_user_item[(1, 3)]
  assert name == spans.split_name(day0 + 1)
  assert _value(third, "history") == [1, 2]
  assert _value(third, "current_item") == [2]
  assert _value(third, "liked") == [1]
  _, first = by_user_item[(1, 1)]
  assert _value(first, "history") == [] and _value(first, "current_item") == [0]
  _, late = by_user_item[(2, 1)]
  assert _value(late, "liked") == [0] and _value(late, "item_first_seen_span") == [day0]
  # Item 1 was rated once on day0, so on day0 + 2 it has one earlier rating: too few for the head.
  assert _value(late, "item_prior_interactions") == [1] and _value(late, "item_segment") == [b"long_tail"]
  assert _value(first, "item_prior_interactions") == [0] and _value(first, "item_segment") == [b"cold_start"]
  assert report["interactions"]["valid"] == 5
  assert report["interactions"]["same_second_as_previous"] == 0
  assert report["interactions"]["liked_fraction"] == 0.6
  assert report["splits"][spans.split_name(day0)]["new_items"] == 2
  assert report["splits"][spans.split_name(day0 + 1)]["new_items"] == 1
  assert report["splits"][spans.split_name(day0 + 2)]["new_items"] == 0


def test_item_segment_uses_only_earlier_spans():
  assert features.item_segment(span=7, item_first_seen_span=7, item_prior_interactions=0) == "cold_start"
  assert features.item_segment(7, 3, features.HEAD_MIN_PRIOR_INTERACTIONS - 1) == "long_tail"
  assert features.item_segment(7, 3, features.HEAD_MIN_PRIOR_INTERACTIONS) == "head"


def test_history_is_capped_to_most_recent(tiny_movielens, tmp_path):
  examples, _, _ = conftest.run_movielens_example_gen(tiny_movielens, tmp_path, history_length=1)
  day1 = spans.split_name(spans.span_of(conftest.DAY0, "day") + 1)
  histories = {_value(e, "item_id")[0]: _value(e, "history") for e in _read(examples, day1)}
  assert histories[3] == [2]


def test_item_corpus_has_every_movie_with_tags_and_first_seen(tiny_movielens, tmp_path):
  _, items, report = conftest.run_movielens_example_gen(tiny_movielens, tmp_path)
  corpus = {_value(e, "item_id")[0]: e for e in _read(items, "items")}
  assert sorted(corpus) == [1, 2, 3, 4]
  assert _value(corpus[1], "tags") == [b"pixar", b"toys"]
  assert _value(corpus[1], "content_text") == [
      b"Toy Story (1995). Genres: Adventure, Animation. Tags: pixar, toys"]
  assert _value(corpus[3], "content_text") == [b"No Genres Movie"]
  assert _value(corpus[3], "year") == [0]
  assert _value(corpus[4], "first_seen") == [-1] and _value(corpus[4], "num_ratings") == [0]
  assert _value(corpus[2], "first_seen") == [conftest.DAY0 + 1]
  assert report["items"] == {"total": 4, "rated": 3, "never_rated": 1, "no_genres": 1,
                             "no_year_in_title": 1, "with_tags": 1}


def test_start_and_end_date_backfill_and_range(tiny_movielens, tmp_path):
  examples, _, report = conftest.run_movielens_example_gen(tiny_movielens, tmp_path, start_date="2018-01-02", end_date="2018-01-03")
  day1 = spans.split_name(spans.span_of(conftest.DAY0, "day") + 1)
  assert artifact_utils.decode_split_names(examples.split_names) == ["backfill", day1]
  assert len(_read(examples, "backfill")) == 2
  assert report["interactions"]["outside_span_range"] == 1
  only_new, _, _ = conftest.run_movielens_example_gen(tiny_movielens, tmp_path / "again", start_date="2018-01-02",
                        write_backfill=0)
  assert "backfill" not in artifact_utils.decode_split_names(only_new.split_names)


BAD_RATINGS = conftest.TINY_RATINGS + f"""1,99,4.0,{conftest.DAY0}
1,4,6.0,{conftest.DAY0}
1,4,4.0,notatime
1,,4.0,{conftest.DAY0}
userId,movieId,rating,timestamp
1,4,4.0
2,2,3.0,{conftest.DAY0 + 9 * conftest.DAY}
"""
BAD_MOVIES = conftest.TINY_MOVIES + "4,Same Id Again (2001),Drama\n"


def test_bad_rows_are_quarantined_and_reported(tmp_path):
  base = conftest.write_movielens(tmp_path / "bad", movies=BAD_MOVIES, ratings=BAD_RATINGS)
  examples, items, report = conftest.run_movielens_example_gen(base, tmp_path)
  bad = report["bad_rows"]
  assert bad["total"] == 8
  assert bad["by_reason"] == {
      "movieId 99 absent from movies.csv": 1, "rating out of range [0.5, 5.0]": 1,
      "unparsable timestamp": 1, "missing field movieId": 1, "duplicate header": 1,
      "wrong column count": 1, "duplicate rating of movieId 2 by userId 2": 1,
      "duplicate movieId 4": 1}
  assert "ratings.csv:7: movieId 99 absent from movies.csv" in bad["examples"][1]
  quarantined = open(os.path.join(os.path.dirname(tmp_path / "out" / "report" / "x"),
                                  executor.QUARANTINE_FILE)).read().splitlines()
  assert len(quarantined) == 8
  assert report["interactions"]["valid"] == 5
  assert len([e for e in _read(items, "items")]) == 4


def test_fail_policy_stops_naming_file_line_and_reason(tmp_path):
  base = conftest.write_movielens(tmp_path / "bad", ratings=BAD_RATINGS)
  with pytest.raises(InputDataError, match=r"ratings.csv:8: rating out of range"):
    conftest.run_movielens_example_gen(base, tmp_path, bad_row_policy="fail")


def test_too_many_bad_rows_stop_even_in_quarantine(tmp_path):
  base = conftest.write_movielens(tmp_path / "bad", ratings=BAD_RATINGS)
  with pytest.raises(InputDataError, match=r"above max_bad_row_fraction=1.00%"):
    conftest.run_movielens_example_gen(base, tmp_path, max_bad_row_fraction=0.01)


def test_missing_file_and_wrong_header_are_clear_errors(tmp_path):
  no_movies = conftest.write_movielens(tmp_path / "a", movies=None)
  with pytest.raises(InputDataError, match=r"movies.csv: required file is missing"):
    conftest.run_movielens_example_gen(no_movies, tmp_path)
  headless = conftest.write_movielens(tmp_path / "b", ratings=conftest.TINY_RATINGS.split("\n", 1)[1])
  with pytest.raises(InputDataError, match=r"ratings.csv:1: expected header"):
    conftest.run_movielens_example_gen(headless, tmp_path)
  no_tags = conftest.write_movielens(tmp_path / "c", tags=None)
  _, items, _ = conftest.run_movielens_example_gen(no_tags, tmp_path / "c_out")
  assert len(_read(items, "items")) == 4


def test_empty_range_is_an_error(tiny_movielens, tmp_path):
  with pytest.raises(InputDataError, match="no interaction falls in the requested span range"):
    conftest.run_movielens_example_gen(tiny_movielens, tmp_path, start_date="2019-01-01", write_backfill=0)


def test_same_second_ratings_keep_file_order_and_are_counted(tmp_path):
  ratings = f"userId,movieId,rating,timestamp\n1,3,4.0,{conftest.DAY0}\n1,1,4.0,{conftest.DAY0}\n"
  examples, _, report = conftest.run_movielens_example_gen(
      conftest.write_movielens(tmp_path / "ml", ratings=ratings), tmp_path)
  [split] = artifact_utils.decode_split_names(examples.split_names)
  histories = {_value(e, "item_id")[0]: _value(e, "history") for e in _read(examples, split)}
  assert histories == {3: [], 1: [3]}
  assert report["interactions"]["same_second_as_previous"] == 1
