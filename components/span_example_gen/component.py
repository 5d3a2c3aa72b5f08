"""SpanExampleGen: one span's MovieLens files + the previous FeatureState -> the span's interactions,
its new items, the next FeatureState and an ingestion report.

Span mode (a pattern with {SPAN}): TFX's FileBasedDriver resolves the span at run time (the latest
`<input_base>/span-<N>/` or the one `range_config` names) and fingerprints its files, so the cache
key changes whenever they do:
  example_gen = SpanExampleGen(input_base='data/partitioned', span_period='day',
                               previous_state=latest_state.outputs['state'])
Backfill mode: everything in `<input_base>/backfill/`, all of it before `end_date` (the first daily
span's start):
  example_gen = SpanExampleGen(input_base='data/partitioned', span_period='day',
                               span_pattern='backfill', end_date=config.start_date)
Outputs: `examples` (split 'interactions'), `items` (split 'items': items new in this input),
`state` (FeatureState for the next run) and `report` (ingestion_report.json, quarantine.jsonl).
"""

import re
from typing import Optional, Union

from tfx import types
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import driver
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.span_example_gen import executor
from formats import artifacts, spans
from formats import interaction_features as fields

BACKFILL_PATTERN = "backfill"


class SpanExampleGenSpec(types.ComponentSpec):
  # FileBasedExampleGen's parameters, so that its drivers (local and Kubeflow V2) resolve the span.
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      "span_period": ExecutionParameter(type=str),
      "history_length": ExecutionParameter(type=int),
      "max_tags": ExecutionParameter(type=int),
      "bad_row_policy": ExecutionParameter(type=str),
      "max_bad_row_fraction": ExecutionParameter(type=float),
      "end_date": ExecutionParameter(type=str, optional=True),
      "backfill_chunk_interactions": ExecutionParameter(type=int, optional=True),
      "counter_half_life_days": ExecutionParameter(type=float, optional=True),
  }
  INPUTS = {
      "previous_state": ChannelParameter(type=artifacts.FeatureState, optional=True),
  }
  OUTPUTS = {
      "examples": ChannelParameter(type=standard_artifacts.Examples),
      "items": ChannelParameter(type=standard_artifacts.Examples),
      "state": ChannelParameter(type=artifacts.FeatureState),
      "report": ChannelParameter(type=artifacts.IngestionReport),
  }


def input_config(span_pattern: str) -> example_gen_pb2.Input:
  """One input split per file of a span's directory."""
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name=name, pattern=f"{span_pattern}/{file_name}")
      for name, file_name in executor.FILES.items()])


def _check_mode(span_pattern: str, span_period: str, end_date: Optional[str], previous_state,
                range_config) -> None:
  """ValueError unless the arguments make one span mode or one backfill mode run."""
  if re.search(example_gen_utils.SPAN_FULL_REGEX, span_pattern):
    if end_date:
      raise ValueError(f"end_date is for the backfill only; span_pattern {span_pattern!r} ingests one "
                       f"span at a time, bounded by the span itself")
    return
  if not end_date:
    raise ValueError(f"span_pattern {span_pattern!r} has no {{SPAN}}: a backfill needs end_date, the "
                     f"first daily span's start date")
  if previous_state is not None or range_config is not None:
    raise ValueError(f"span_pattern {span_pattern!r} has no {{SPAN}}: a backfill starts from no "
                     f"previous_state and takes no range_config")
  span_start = spans.span_start(spans.span_of_date(end_date, span_period), span_period).isoformat()
  if span_start != end_date:
    raise ValueError(f"end_date {end_date} must start a {span_period} span (the first daily span's "
                     f"start date), e.g. {span_start}")


class SpanExampleGen(FileBasedExampleGen):
  """Ingests one span of interactions on top of the previous run's FeatureState.

  Each interaction carries user_id, item_id, timestamp, rating, liked = rating >= 4, the user's
  previous items (`history`, oldest first, at most `history_length`, continued from the state),
  `current_item`, its span, its item's first-rated span, ratings in earlier spans and segment, and
  causal counters of the user's and the item's earlier interactions, all-time and decayed with a half-life
  of `counter_half_life_days` (a state of another half-life is refused). Bad rows (a rating outside the
  span, an unknown item, ...) are quarantined or, with bad_row_policy='fail', stop the run; more
  than `max_bad_row_fraction` bad rows stop it in any case.

  A backfill of more than `backfill_chunk_interactions` ratings (0: no limit) is ingested in chunks of
  consecutive spans of at most that many, each on the state of the one before (chunks.py): what a
  process holds is one chunk and the state, not the backfill.
  """

  SPEC_CLASS = SpanExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.FileBasedDriver

  def __init__(self, input_base: str, span_period: str, span_pattern: str = "span-{SPAN}",
               range_config: Optional[Union[range_config_pb2.RangeConfig,
                                            data_types.RuntimeParameter]] = None,
               previous_state: Optional[types.BaseChannel] = None, end_date: Optional[str] = None,
               history_length: int = 20, max_tags: int = 10, bad_row_policy: str = "quarantine",
               max_bad_row_fraction: float = 0.01, backfill_chunk_interactions: int = 0,
               counter_half_life_days: float = fields.COUNTER_HALF_LIFE_DAYS):
    spans.check_period(span_period)
    executor.check_policy(bad_row_policy)
    _check_mode(span_pattern, span_period, end_date, previous_state, range_config)
    if history_length < 1:
      raise ValueError(f"history_length must be >= 1, got {history_length}")
    if counter_half_life_days <= 0:
      raise ValueError(f"counter_half_life_days must be > 0, got {counter_half_life_days}")
    if max_tags < 0:
      raise ValueError(f"max_tags must be >= 0, got {max_tags}")
    if not 0.0 <= max_bad_row_fraction <= 1.0:
      raise ValueError(f"max_bad_row_fraction must be in [0, 1], got {max_bad_row_fraction}")
    if backfill_chunk_interactions < 0:
      raise ValueError(f"backfill_chunk_interactions must be >= 0 (0: one chunk), got "
                       f"{backfill_chunk_interactions}")
    # FileBasedExampleGen.__init__ would build its own spec; its base builds ours.
    base_beam_component.BaseBeamComponent.__init__(self, spec=SpanExampleGenSpec(
        input_base=input_base, input_config=input_config(span_pattern),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=executor.INTERACTIONS_SPLIT, hash_buckets=1)])),
        range_config=range_config, output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP, span_period=span_period,
        history_length=history_length, max_tags=max_tags, bad_row_policy=bad_row_policy,
        max_bad_row_fraction=max_bad_row_fraction, end_date=end_date, previous_state=previous_state,
        backfill_chunk_interactions=backfill_chunk_interactions, counter_half_life_days=counter_half_life_days,
        examples=types.Channel(type=standard_artifacts.Examples),
        items=types.Channel(type=standard_artifacts.Examples),
        state=types.Channel(type=artifacts.FeatureState),
        report=types.Channel(type=artifacts.IngestionReport)))
