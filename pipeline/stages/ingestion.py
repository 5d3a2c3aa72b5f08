"""Ingestion and validation: SpanExampleGen (one span, or the backfill) and TFDV against schemas/."""

import dataclasses
from typing import List, Optional, Union

from tfx.components.example_validator.component import ExampleValidator
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.dsl.components.base import base_node
from tfx.orchestration import data_types
from tfx.proto import range_config_pb2

import schemas
from components.span_example_gen.component import SpanExampleGen
from pipeline import partition
from pipeline.configs import PipelineConfig
# A daily run's span: a number (local runs), or on Kubeflow a runtime parameter holding a RangeConfig JSON.
Span = Union[int, data_types.RuntimeParameter]


@dataclasses.dataclass
class Ingestion:
  example_gen: SpanExampleGen
  nodes: List[base_node.BaseNode]


def ingestion(config: PipelineConfig, previous_state=None, validate_items: bool = False,
              range_config: Optional[Union[range_config_pb2.RangeConfig, data_types.RuntimeParameter]] = None
              ) -> Ingestion:
  """Without `range_config`: the backfill (everything before config.start_date); with it: the span it
  names (or, as a runtime parameter, the span the scheduler passes), continuing from `previous_state`."""
  backfill = range_config is None
  example_gen = SpanExampleGen(
      input_base=config.input_base, span_period=config.span_period,
      span_pattern=partition.BACKFILL if backfill else partition.SPAN_PATTERN, range_config=range_config,
      previous_state=previous_state, end_date=config.start_date if backfill else None,
      history_length=config.history_length, max_tags=config.max_tags,
      bad_row_policy=config.bad_row_policy, max_bad_row_fraction=config.max_bad_row_fraction,
      backfill_chunk_interactions=config.backfill_chunk_interactions,
      counter_half_life_days=config.counter_half_life_days)
  statistics = StatisticsGen(examples=example_gen.outputs["examples"])
  schema = ImportSchemaGen(schema_file=schemas.INTERACTIONS_SCHEMA).with_id("InteractionsSchema")
  validator = ExampleValidator(statistics=statistics.outputs["statistics"],
                                              schema=schema.outputs["schema"])
  nodes = [example_gen, statistics, schema, validator]
  if validate_items:
    item_statistics = StatisticsGen(
        examples=example_gen.outputs["items"]).with_id("ItemStatisticsGen")
    items_schema = ImportSchemaGen(schema_file=schemas.ITEMS_SCHEMA).with_id("ItemsSchema")
    nodes += [item_statistics, items_schema, ExampleValidator(
        statistics=item_statistics.outputs["statistics"],
        schema=items_schema.outputs["schema"]).with_id("ItemExampleValidator")]
  return Ingestion(example_gen, nodes)


def span_range(span: Span) -> Union[range_config_pb2.RangeConfig, data_types.RuntimeParameter]:
  """Span `span` as a static range. A runtime parameter is the range itself: the example-gen driver reads
  it at run time (a RangeConfig JSON; empty for the latest span present), the only span value it sees."""
  if isinstance(span, data_types.RuntimeParameter):
    return span
  return range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
      start_span_number=span, end_span_number=span))
