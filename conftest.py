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


def run_movielens_example_gen(input_base: str, out_dir: pathlib.Path, **props):
  """Calls MovieLensExampleGen's Do() on fresh artifacts; returns (examples, items, report dict)."""
  import json  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components import artifacts  # pylint: disable=g-import-not-at-top
  from components.movielens_example_gen import executor  # pylint: disable=g-import-not-at-top
  out = {"examples": [standard_artifacts.Examples()], "items": [standard_artifacts.Examples()],
         "report": [artifacts.IngestionReport()]}
  for key, [artifact] in out.items():
    artifact.uri = str(out_dir / "out" / key)
  defaults = dict(span_period="day", history_length=20, max_tags=10, bad_row_policy="quarantine",
                  max_bad_row_fraction=1.0)
  executor.Executor(beam_context()).Do({}, out, dict(defaults, input_base=input_base, **props))
  with open(os.path.join(out["report"][0].uri, executor.REPORT_FILE)) as f:
    report = json.load(f)
  return out["examples"][0], out["items"][0], report


def beam_context():
  """Executor context with the pipeline's local Beam arguments (no Prism download, no packaging)."""
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  return base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=configs.BEAM_PIPELINE_ARGS)
