"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner engine, SQLite ML Metadata.

  python -m pipeline.local_runner [--data_root DIR] [--output_root DIR] [--precomputed_embeddings F]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ml_metadata import metadata_store  # pylint: disable=g-import-not-at-top
from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top

from formats.errors import InputDataError  # pylint: disable=g-import-not-at-top
from pipeline import configs, pipeline, progress, summary  # pylint: disable=g-import-not-at-top


def _args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_root", default=configs.DATA_ROOT,
                      help="MovieLens-format directory (ratings.csv, movies.csv, optional tags.csv)")
  parser.add_argument("--output_root", default=configs.OUTPUT_ROOT,
                      help="where artifacts and the ML Metadata database go")
  parser.add_argument("--span_period", default=configs.SPAN_PERIOD, choices=("day", "week", "month"))
  parser.add_argument("--start_date", default=configs.START_DATE,
                      help="first span's date; earlier interactions form the 'backfill' split")
  parser.add_argument("--precomputed_embeddings", default=None,
                      help=".npz with item_ids and embeddings, used instead of the MiniLM encoder")
  parser.add_argument("--no_cache", action="store_true", help="re-run every component")
  return parser.parse_args(argv)


def _error_chain_message(error: BaseException) -> str:
  """The message of the InputDataError behind an error, if any (Beam wraps executor errors)."""
  while error is not None:
    if isinstance(error, InputDataError):
      return str(error)
    error = error.__cause__ or error.__context__
  return ""


def main(argv=None) -> int:
  args = _args(argv)
  metadata_path = os.path.join(args.output_root, "metadata.sqlite")
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
  sid_pipeline = pipeline.create_pipeline(**{
      **configs.pipeline_args(args.span_period),
      "start_date": args.start_date,
      "pipeline_root": os.path.join(args.output_root, "pipeline_root"),
      "data_root": args.data_root,
      "serving_model_dir": os.path.join(args.output_root, "serving", configs.PIPELINE_NAME),
      "precomputed_embeddings": args.precomputed_embeddings,
      "metadata_connection_config": connection,
      "enable_cache": not args.no_cache})

  print(f"Pipeline {configs.PIPELINE_NAME}: data {args.data_root} -> {args.output_root}", flush=True)
  # The runner logs each component's start and end; show those, not the libraries' chatter.
  with progress.watch(quiet_other_handlers=True) as watcher:
    try:
      tfx.orchestration.LocalDagRunner().run(sid_pipeline)
    except Exception as error:  # pylint: disable=broad-except
      message = _error_chain_message(error)
      if not message:
        raise
      print(f"\nStopped after {watcher.elapsed():.0f}s: input data refused.\n{message}",
            file=sys.stderr)
      return 2
  print(f"\nFinished in {watcher.elapsed():.0f}s "
        f"({sum(1 for s in watcher.finished.values() if s['cached'])} of {len(watcher.finished)} "
        f"components from cache).")
  summary.print_summary(metadata_store.MetadataStore(connection), configs.PIPELINE_NAME)
  return 0


if __name__ == "__main__":
  sys.exit(main())
