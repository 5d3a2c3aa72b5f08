"""pipeline/partition.py: MovieLens directory -> backfill and span directories."""

import json
import pathlib

import pytest

import conftest
from formats import spans
from pipeline import partition

D0, DAY = conftest.DAY0, conftest.DAY
D1 = spans.span_of(D0, "day") + 1  # 2018-01-02, the start date
MOVIES = conftest.TINY_MOVIES + "5,Late (2001),Comedy\n"
RATINGS = f"""userId,movieId,rating,timestamp
1,1,4.0,{D0}
1,2,3.0,{D0 + 1}
1,3,5.0,{D0 + DAY}
2,2,4.5,{D0 + DAY + 5}
2,1,2.0,{D0 + 2 * DAY}
3,1,4.0,soon
3,2,1.0,{D0 + 4 * DAY}
3,5,2.0,{D0 + 5 * DAY}
"""
# Movie 3's tag precedes its first rating (day 1): it waits for the movie. Movie 4 is never rated.
TAGS = f"""userId,movieId,tag,timestamp
1,1,Pixar,{D0}
2,1,pixar,{D0 + 3}
2,1,toys,{D0 + 4 * DAY}
1,3,"funny, odd",{D0}
2,4,classic,{D0 + 2 * DAY}
"""
HEADERS = {"ratings.csv": "userId,movieId,rating,timestamp\n", "movies.csv": "movieId,title,genres\n",
           "tags.csv": "userId,movieId,tag,timestamp\n"}
EXPECTED = {
    "backfill": {"ratings.csv": f"1,1,4.0,{D0}\n1,2,3.0,{D0 + 1}\n",
                 "movies.csv": '1,Toy Story (1995),Adventure|Animation\n2,"Heat, The (1995)",Action|Crime\n'
                               "4,Never Rated (2000),Drama\n",
                 "tags.csv": f"1,1,Pixar,{D0}\n2,1,pixar,{D0 + 3}\n"},
    f"span-{D1}": {"ratings.csv": f"1,3,5.0,{D0 + DAY}\n2,2,4.5,{D0 + DAY + 5}\n",
                   "movies.csv": "3,No Genres Movie,(no genres listed)\n",
                   "tags.csv": f'1,3,"funny, odd",{D0}\n'},
    f"span-{D1 + 1}": {"ratings.csv": f"2,1,2.0,{D0 + 2 * DAY}\n",
                       "tags.csv": f"2,4,classic,{D0 + 2 * DAY}\n"},
    f"span-{D1 + 2}": {},
    f"span-{D1 + 3}": {"ratings.csv": f"3,2,1.0,{D0 + 4 * DAY}\n", "tags.csv": f"2,1,toys,{D0 + 4 * DAY}\n"},
    f"span-{D1 + 4}": {"ratings.csv": f"3,5,2.0,{D0 + 5 * DAY}\n", "movies.csv": "5,Late (2001),Comedy\n"},
}


def _source(tmp_path: pathlib.Path, **files) -> str:
  files = {"movies": MOVIES, "ratings": RATINGS, "tags": TAGS, **files}
  return conftest.write_movielens(tmp_path / "ml", **files)


def _tree(root: pathlib.Path):
  return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(source: str, output: pathlib.Path, *args: str, log=None) -> dict:
  return partition.partition(source, str(output), "day", "2018-01-02", *args,
                             log=(log.append if log is not None else lambda _: None))


def test_rows_go_to_their_span_movies_with_their_first_rating_and_tags_not_before_their_movie(tmp_path):
  log = []
  summary = _run(_source(tmp_path), tmp_path / "out", log=log)
  tree = _tree(tmp_path / "out")
  for directory, files in EXPECTED.items():
    for name, header in HEADERS.items():
      assert tree.pop(f"{directory}/{name}") == header + files.get(name, ""), (directory, name)
  assert tree.pop("unparsed.csv") == (
      'file,line,reason,text\nratings.csv,7,timestamp is not an integer,"3,1,4.0,soon"\n')
  assert json.loads(tree.pop("partition.json")) == summary
  assert not tree
  assert summary == {
      "source": str(tmp_path / "ml"), "span_period": "day", "start_date": "2018-01-02", "end_date": None,
      "spans": [D1, D1 + 4],
      "directories": {d: {k: len(files.get(f"{k}.csv", "").splitlines())
                          for k in ("ratings", "movies", "tags")} for d, files in EXPECTED.items()},
      "unparsed": {"ratings": 1, "movies": 0, "tags": 0},
      "after_end_date": {"ratings": 0, "movies": 0, "tags": 0}}
  assert log == [
      "backfill (before 2018-01-02): 2 ratings, 3 movies, 2 tags",
      f"span-{D1}..{D1 + 4} (2018-01-02..2018-01-06): 5 ratings, 2 movies, 3 tags",
      f"Partitioned {tmp_path / 'ml'} into {tmp_path / 'out'}: backfill and 5 day spans {D1}..{D1 + 4} "
      "(2018-01-02..2018-01-06); 7 ratings, 5 movies, 5 tags; 1 unparsable rows in unparsed.csv; "
      "0 rows from end_date on left out"]


def test_end_date_leaves_out_later_rows_and_the_movies_first_rated_then(tmp_path):
  summary = _run(_source(tmp_path), tmp_path / "out", "2018-01-06")
  assert summary["spans"] == [D1, D1 + 3]
  assert summary["after_end_date"] == {"ratings": 1, "movies": 1, "tags": 0}
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
      "backfill", "partition.json", f"span-{D1}", f"span-{D1 + 1}", f"span-{D1 + 2}", f"span-{D1 + 3}",
      "unparsed.csv"]


def test_small_buffers_write_the_same_files(tmp_path, monkeypatch):
  source = _source(tmp_path)
  _run(source, tmp_path / "big")
  monkeypatch.setattr(partition, "_BUFFER_BYTES", 1)
  _run(source, tmp_path / "small")
  assert _tree(tmp_path / "small") == {k: v.replace(str(tmp_path / "big"), str(tmp_path / "small"))
                                       for k, v in _tree(tmp_path / "big").items()}


def test_a_used_output_needs_overwrite_which_replaces_only_a_partitions_files(tmp_path, capsys):
  source, out = _source(tmp_path), tmp_path / "out"
  args = ["--data_root", source, "--output", str(out), "--span_period", "day", "--start_date", "2018-01-02"]
  assert partition.main(args + ["--end_date", "2018-01-04"]) == 0
  assert partition.main(args) == 2
  assert capsys.readouterr().err == (
      f"partition: --output {out} is not empty (it holds backfill, partition.json, span-{D1}, span-{D1 + 1}, "
      "unparsed.csv); choose an empty directory or pass --overwrite\n")
  assert partition.main(args + ["--span_period", "month", "--start_date", "2018-01-01", "--overwrite"]) == 2
  assert "start_date 2018-01-01 is on or before the first rating (2018-01-01)" in capsys.readouterr().err
  assert partition.main(args + ["--span_period", "week", "--overwrite"]) == 2
  assert "start_date 2018-01-02 is not the first day of a week span; use 2018-01-01 or 2018-01-08" in \
      capsys.readouterr().err
  assert partition.main(args + ["--overwrite"]) == 0
  assert sorted(p.name for p in out.iterdir()) == sorted(
      ["backfill", "partition.json", "unparsed.csv"] + [f"span-{D1 + i}" for i in range(5)])
  (out / "notes.txt").write_text("mine")
  assert partition.main(args + ["--overwrite"]) == 2
  assert capsys.readouterr().err == (
      f"partition: --overwrite replaces only what a partition writes, and {out} also holds notes.txt\n")


@pytest.mark.parametrize("files, args, message", [
    (dict(movies=None), [],
     "{root}/movies.csv: required file is missing; {root} holds: ratings.csv, tags.csv"),
    (dict(ratings="user,movie,rating,time\n"), [], "{root}/ratings.csv: ratings.csv:1: expected header "
     "'userId,movieId,rating,timestamp', found 'user,movie,rating,time'"),
    ({}, ["--span_period", "day", "--start_date", "2030-01-01"],
     "start_date 2030-01-01 is after the last rating (2018-01-06)"),
    ({}, ["--span_period", "day", "--start_date", "2018-01-02", "--end_date", "2018-01-02"],
     "end_date 2018-01-02 must be after start_date 2018-01-02"),
    ({}, ["--span_period", "month"], "month spans would hold a median of 7 ratings (the 1 months "
     "2018-01-01..2018-01-01): too sparse to train and evaluate on (min_interactions_per_span=100); "
     "no period holds enough"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, files, args, message):
  root = _source(tmp_path, **files)
  assert partition.main(["--data_root", root, "--output", str(tmp_path / "out")] + args) == 2
  assert capsys.readouterr().err == f"partition: {message.format(root=root)}\n"
  assert not (tmp_path / "out").exists()


def test_without_period_and_start_date_both_are_chosen_from_the_data(tmp_path):
  # 150 ratings in each of January, February and March 2018: months are the finest dense period.
  ratings = "userId,movieId,rating,timestamp\n" + "".join(
      f"{i + 1},1,4.0,{D0 + (i // 150) * 31 * DAY + (i % 150) * 3600}\n" for i in range(450))
  log = []
  summary = partition.partition(_source(tmp_path, ratings=ratings), str(tmp_path / "out"), log=log.append)
  month = spans.span_of(D0, "month")
  assert (summary["span_period"], summary["start_date"], summary["spans"]) == ("month", "2018-02-01",
                                                                               [month + 1, month + 2])
  assert log[0].startswith("chosen: month spans: the 3 months 2018-01-01..2018-03-01 hold a median of 150")
