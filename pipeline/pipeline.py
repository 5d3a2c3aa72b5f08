"""The two pipelines of the production loop, built from the stage builders of pipeline/stages/.

1. SID refresh (on demand, e.g. monthly): the backfill's interactions and item corpus -> content
   embeddings -> RQ-VAE (frozen) -> every item's Semantic ID -> SentencePiece vocabularies -> quality and
   adaptation reports -> the warm-up ranking and retrieval models. Its outputs are the frozen inputs of the
   daily runs.
2. Daily run (scheduled, one pipeline run per span N): ingest span N only, continuing from the latest
   feature state -> SIDs for the span's new items from the frozen RQ-VAE -> evaluate the latest model on
   span N against the blessed one -> push it when blessed -> train the next model on span N, warm-started;
   the same for the retrieval model (TIGER), then the two-stage `recommend` model over the run's catalog.

Both share one pipeline name, so that a daily run's resolvers find the refresh's artifacts in ML Metadata.
"""

from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.base import base_beam_component
from tfx.orchestration import pipeline as tfx_pipeline

from pipeline import beam_runners
from pipeline.configs import PipelineConfig
from pipeline.stages import ingestion, ranking, retrieval, semantic_ids


def create_sid_refresh_pipeline(
    config: PipelineConfig,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    stock_resolvers: bool = False,
) -> tfx_pipeline.Pipeline:
  """The SID refresh over the backfill (everything before config.start_date). `stock_resolvers`: for a
  compiler that takes TFX's stock resolver strategies only (Kubeflow's)."""
  backfill = ingestion.ingestion(config, validate_items=True)
  sids, sid_nodes = semantic_ids.sid_refresh(
      config, items=backfill.example_gen.outputs["items"], examples=backfill.example_gen.outputs["examples"],
      stock_resolvers=stock_resolvers)
  warmup = ranking.warmup(config, backfill.example_gen.outputs["examples"], backfill.example_gen.outputs["state"],
                          sids, stock_resolvers)
  retrieval_warmup = retrieval.warmup(config, backfill.example_gen.outputs["examples"], sids, stock_resolvers)
  return _pipeline(config, [*backfill.nodes, *sid_nodes, *warmup.nodes, *retrieval_warmup.nodes],
                   metadata_connection_config)


def create_daily_pipeline(
    config: PipelineConfig,
    span: ingestion.Span,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
) -> tfx_pipeline.Pipeline:
  """One daily run: span `span` of config.input_base, continuing from the latest artifacts before it.

  On Kubeflow `span` is a runtime parameter (a RangeConfig JSON; empty: the latest span present when the
  run starts) and the latest artifacts are the newest ones: pipeline/stages/ranking.py says what differs.
  """
  state = ranking.latest_state(span)
  span_input = ingestion.ingestion(config, previous_state=state.outputs["state"],
                                   range_config=ingestion.span_range(span))
  frozen, frozen_resolver = ranking.latest_sid_artifacts(span)
  sids, new_item_nodes = semantic_ids.new_items(config, span_input.example_gen.outputs["items"], frozen)
  step = ranking.daily(config, span, span_input.example_gen.outputs["examples"],
                       span_input.example_gen.outputs["state"], sids)
  retrieval_step = retrieval.daily(config, span, span_input.example_gen.outputs["examples"], sids, step.pusher)
  return _pipeline(config, [state, *span_input.nodes, frozen_resolver, *new_item_nodes, *step.nodes,
                            *retrieval_step.nodes], metadata_connection_config)


def _pipeline(config: PipelineConfig, components, metadata_connection_config) -> tfx_pipeline.Pipeline:
  own_engine = beam_runners.tfx_component_args(config.beam_pipeline_args)
  if own_engine:
    for component in components:
      tfx_own = type(component).__module__.startswith("tfx.")
      if tfx_own and isinstance(component, base_beam_component.BaseBeamComponent):
        component.with_beam_pipeline_args(own_engine)  # After the pipeline's: these win.
  return tfx_pipeline.Pipeline(
      pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root, components=components,
      enable_cache=config.enable_cache, metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=config.beam_pipeline_args)
