"""Test set-up shared by every test: tf-keras before TensorFlow, and a tiny MovieLens directory."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # pylint: disable=g-import-not-at-top

import pytest  # pylint: disable=g-import-not-at-top

# 2018-01-01 00:00:00 UTC, a Monday.
DAY0 = 1514764800
DAY = 86400

TINY_MOVIES = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation
2,"Heat, The (1995)",Action|Crime
3,No Genres Movie,(no genres listed)
4,Never Rated (2000),Drama
"""
TINY_RATINGS = f"""userId,movieId,rating,timestamp
1,1,4.0,{DAY0}
1,2,3.0,{DAY0 + 1}
1,3,5.0,{DAY0 + DAY}
2,2,4.5,{DAY0 + DAY + 5}
2,1,2.0,{DAY0 + 2 * DAY}
"""
TINY_TAGS = f"""userId,movieId,tag,timestamp
1,1,Pixar,{DAY0}
2,1,pixar,{DAY0 + 3}
2,1,toys,{DAY0 + 4}
"""


def write_movielens(path: pathlib.Path, movies: str = TINY_MOVIES, ratings: str = TINY_RATINGS,
                    tags: str = TINY_TAGS) -> str:
  path.mkdir(parents=True, exist_ok=True)
  for name, text in (("movies.csv", movies), ("ratings.csv", ratings), ("tags.csv", tags)):
    if text is not None:
      (path / name).write_text(text)
  return str(path)


@pytest.fixture
def tiny_movielens(tmp_path: pathlib.Path) -> str:
  return write_movielens(tmp_path / "movielens")
