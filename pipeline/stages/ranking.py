"""Ranking: the latest artifacts resolved from ML Metadata, TFMA evaluation of the latest model on the
new span against the blessed one, push when blessed, then one continuous-training step on the span.

In a daily run for span N the latest trained model (trained on spans before N) is evaluated on span N,
which it has never seen, before it is trained on it: so every span is scored before it is trained on,
and the model pushed after span N is the one trained through span N-1 and validated on span N.
"""

import dataclasses
from typing import List, Optional

import tensorflow_model_analysis as tfma
from google.protobuf import wrappers_pb2
from tfx.components.evaluator.component import Evaluator
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.dsl.components.base import base_node
from tfx.orchestration import data_types
from tfx.proto import pusher_pb2
from tfx.types import channel, standard_artifacts

from components.ranking_trainer.component import RankingTrainer
from components.resolvers import LatestBeforeSpan, LatestBlessedBeforeSpan
from formats import artifacts
from pipeline.configs import PipelineConfig
from pipeline.stages.ingestion import Span
from pipeline.stages import semantic_ids
from pipeline.stages.semantic_ids import INTERACTIONS_SPLIT, SidArtifacts

RANKING_TRAINER = "RankingTrainer"


def _trained_models() -> channel.Channel:
  return channel.Channel(type=standard_artifacts.Model, producer_component_id=RANKING_TRAINER,
                         output_key="model")


def resolver(node_id: str, span: Span, blessed: bool = False, **channels: channel.Channel
              ) -> Resolver:
  """The latest artifacts of `channels` of a span before `span`; with `blessed`, the latest blessed model
  and its blessing of a span before span - 1 (span - 1's model is blessed in run `span` only).

  On Kubeflow `span` is a runtime parameter, unknown when the spec is compiled, and the compiler accepts
  only TFX's stock LatestArtifactStrategy and LatestBlessedModelStrategy, which take the newest LIVE
  artifacts whatever their span. Daily runs in order resolve the same; a re-run of a killed span N does
  not: it resolves the state (and the model) the killed attempt wrote. SpanExampleGen refuses a
  previous_state of span N with a clear error, so nothing is applied twice; mark the killed attempt's
  artifacts not LIVE in ML Metadata (or run the span with pipeline/daily_run.py) to run it again.
  """
  if isinstance(span, data_types.RuntimeParameter):
    strategy, config = (LatestBlessedModelStrategy if blessed
                        else LatestArtifactStrategy), None
  else:
    strategy, config = ((LatestBlessedBeforeSpan, {"span": span - 1}) if blessed
                        else (LatestBeforeSpan, {"span": span}))
  return Resolver(strategy_class=strategy, config=config, **channels).with_id(node_id)


def latest_state(span: Span) -> Resolver:
  """The feature state after the latest span before `span` (a daily run's, or the SID refresh's backfill)."""
  return resolver("LatestFeatureState", span, state=channel.Channel(type=artifacts.FeatureState))


def latest_sid_artifacts(span: Span) -> tuple[SidArtifacts, Resolver]:
  """The SID refresh's frozen models and vocabulary, and the latest catalog (refresh or daily) before `span`."""
  frozen = resolver(
      "LatestSidArtifacts", span,
      semantic_ids=channel.Channel(type=artifacts.SemanticIds, producer_component_id="SemanticIdAssigner",
                                   output_key="semantic_ids"),
      embeddings=channel.Channel(type=artifacts.ItemEmbeddings),
      vocabulary=channel.Channel(type=artifacts.SidVocabulary),
      sid_encoder=channel.Channel(type=artifacts.RQVAEModel, producer_component_id="RQVAETrainer",
                                  output_key="model"),
      text_encoder=channel.Channel(type=artifacts.TextEncoderModel, producer_component_id="ContentEmbedder",
                                   output_key="encoder"))
  return SidArtifacts(**{key: frozen.outputs[key] for key in (
      "semantic_ids", "embeddings", "vocabulary", "sid_encoder", "text_encoder")}), frozen


@dataclasses.dataclass
class RankingStage:
  trainer: RankingTrainer
  nodes: List[base_node.BaseNode]
  pusher: Optional[Pusher] = None  # the daily run's


def warmup(config: PipelineConfig, examples: channel.BaseChannel, state: channel.BaseChannel,
           sids: SidArtifacts, stock_resolvers: bool = False) -> RankingStage:
  """The SID refresh's ranking model, from which the daily chain restarts: new SIDs and a new vocabulary give
  the embedding tables new meanings. Trained on the backfill from scratch; or, with config.refresh_warm_start
  "remap", the latest ranking model (resolved from ML Metadata; none in a first refresh, which then trains
  from scratch) remapped onto the new SIDs and trained on the latest interactions only."""
  if config.refresh_warm_start != "remap":
    trainer = _trainer(config, examples, state, sids, base_model=None, scored_before_training=False)
    return RankingStage(trainer, [trainer])
  previous = semantic_ids.previous_model("PreviousRankingModel", config, stock_resolvers, RANKING_TRAINER,
                                         ["semantic_ids", "vocabulary"])
  trainer = _trainer(config, examples, state, sids, base_model=previous.outputs["model"], scored_before_training=False,
                     previous=previous)
  return RankingStage(trainer, [previous, trainer])


def daily(config: PipelineConfig, span: Span, examples: channel.BaseChannel, state: channel.BaseChannel,
          sids: SidArtifacts) -> RankingStage:
  """Evaluate the latest model on span `span` against the latest blessed one, push it if blessed, and
  train the next model on the span, warm-started from it."""
  latest_model = resolver("LatestModel", span, model=_trained_models())
  blessed_model = resolver("LatestBlessedModel", span, blessed=True, model=_trained_models(),
                            model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing,
                                                           producer_component_id="Evaluator", output_key="blessing"))
  evaluator = Evaluator(
      examples=examples, model=latest_model.outputs["model"], baseline_model=blessed_model.outputs["model"],
      eval_config=eval_config(config.min_auc, config.max_auc_regression, config.min_eval_examples),
      example_splits=[INTERACTIONS_SPLIT])
  pusher = Pusher(
      model=latest_model.outputs["model"], model_blessing=evaluator.outputs["blessing"],
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=config.serving_model_dir)))
  trainer = _trainer(config, examples, state, sids, base_model=latest_model.outputs["model"],
                     scored_before_training=True)
  return RankingStage(trainer, [latest_model, blessed_model, evaluator, pusher, trainer], pusher)


def _trainer(config: PipelineConfig, examples: channel.BaseChannel, state: channel.BaseChannel, sids: SidArtifacts,
             base_model: Optional[channel.BaseChannel], scored_before_training: bool,
             previous: Optional[Resolver] = None) -> RankingTrainer:
  """With scored_before_training, the trainer also scores the span with the incoming model before it
  trains on it (models/ranking/trainer.py): its own figure beside TFMA's. `state`: the feature state after
  the examples' span, whose counters the serving model carries. With `previous` (semantic_ids.previous_model),
  `base_model` was trained on its Semantic IDs and vocabulary, which the trainer maps onto the new ones."""
  return RankingTrainer(
      examples=examples, semantic_ids=sids.semantic_ids, vocabulary=sids.vocabulary,
      embeddings=sids.embeddings, sid_encoder=sids.sid_encoder, feature_state=state,
      base_model=base_model, previous_semantic_ids=previous.outputs["semantic_ids"] if previous else None,
      previous_vocabulary=previous.outputs["vocabulary"] if previous else None, train_splits=[INTERACTIONS_SPLIT],
      eval_splits=[INTERACTIONS_SPLIT] if scored_before_training else [],
      ranking_config=config.ranking).with_id(RANKING_TRAINER)


def eval_config(min_auc: float, max_auc_regression: float, min_examples: int) -> tfma.EvalConfig:
  """AUC (blessing: >= min_auc overall, and no more than max_auc_regression below the blessed baseline,
  on at least min_examples interactions), example count and calibration, overall and per item segment
  (cold_start, long_tail, head: written by the ingestion from earlier spans only)."""
  return tfma.EvalConfig(
      model_specs=[
          tfma.ModelSpec(name="candidate", signature_name="serving_default", label_key="liked",
                         prediction_key="probability"),
          tfma.ModelSpec(name="baseline", signature_name="serving_default", label_key="liked",
                         prediction_key="probability", is_baseline=True)],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["item_segment"])],
      options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)),
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount", per_slice_thresholds=[tfma.PerSliceMetricThreshold(
              slicing_specs=[tfma.SlicingSpec()], threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_examples})))]),
          # The blessing looks at the overall slice only: a span's cold-start slice holds too few
          # interactions to gate a release on.
          tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[tfma.PerSliceMetricThreshold(
              slicing_specs=[tfma.SlicingSpec()], threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_auc}),
                  change_threshold=tfma.GenericChangeThreshold(
                      direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                      absolute={"value": -max_auc_regression})))]),
          tfma.MetricConfig(class_name="BinaryCrossentropy"),
          tfma.MetricConfig(class_name="Calibration"),
      ])])
