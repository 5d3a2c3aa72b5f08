"""MovieLensExampleGen: MovieLens-format CSV logs -> interactions by calendar span + item corpus.

Example:
  example_gen = MovieLensExampleGen(input_base='data/ml-latest-small', span_period='month',
                                    start_date='2016-01-01')
  # example_gen.outputs['examples']: splits 'backfill' (before start_date) and 'span_<N>'
  # example_gen.outputs['items']: split 'items', one record per movie in movies.csv
"""

import os
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components import fingerprint
from components.movielens_example_gen import executor


class MovieLensExampleGenSpec(types.ComponentSpec):
  PARAMETERS = {
      "input_base": ExecutionParameter(type=str),
      # Changes whenever an input file does, so that caching never serves stale data.
      "input_fingerprint": ExecutionParameter(type=str),
      "span_period": ExecutionParameter(type=str),
      "start_date": ExecutionParameter(type=str, optional=True),
      "end_date": ExecutionParameter(type=str, optional=True),
      "write_backfill": ExecutionParameter(type=int, optional=True),
      "history_length": ExecutionParameter(type=int),
      "max_tags": ExecutionParameter(type=int),
      "bad_row_policy": ExecutionParameter(type=str),
      "max_bad_row_fraction": ExecutionParameter(type=float),
  }
  INPUTS = {}
  OUTPUTS = {
      "examples": ChannelParameter(type=standard_artifacts.Examples),
      "items": ChannelParameter(type=standard_artifacts.Examples),
      "report": ChannelParameter(type=artifacts.IngestionReport),
  }


class MovieLensExampleGen(base_beam_component.BaseBeamComponent):
  """Writes interactions as tf.Examples, one split per calendar span, and the item corpus.

  Each interaction carries user_id, item_id, timestamp, rating, the label liked = rating >= 4, the
  user's previous items (`history`, oldest first, at most `history_length`), the item just before
  (`current_item`, the paper's watch item), its span and the span its item was first rated in.
  Bad rows are quarantined (reported with file, line and reason) or, with bad_row_policy='fail',
  stop the run; more than `max_bad_row_fraction` bad rows stop it in any case.
  """

  SPEC_CLASS = MovieLensExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str, span_period: str = "day", start_date: Optional[str] = None,
               end_date: Optional[str] = None, write_backfill: bool = True,
               history_length: int = 20, max_tags: int = 10, bad_row_policy: str = "quarantine",
               max_bad_row_fraction: float = 0.01):
    executor.check_policy(bad_row_policy)
    executor.SpanRange(span_period, start_date or "", end_date or "", write_backfill)
    if history_length < 1:
      raise ValueError(f"history_length must be >= 1, got {history_length}")
    super().__init__(spec=MovieLensExampleGenSpec(
        input_base=input_base, input_fingerprint=fingerprint.files_fingerprint(
            os.path.join(input_base, name) for name in executor.INPUT_FILES),
        span_period=span_period, start_date=start_date, end_date=end_date,
        write_backfill=int(write_backfill), history_length=history_length, max_tags=max_tags,
        bad_row_policy=bad_row_policy, max_bad_row_fraction=max_bad_row_fraction,
        examples=types.Channel(type=standard_artifacts.Examples),
        items=types.Channel(type=standard_artifacts.Examples),
        report=types.Channel(type=artifacts.IngestionReport)))
