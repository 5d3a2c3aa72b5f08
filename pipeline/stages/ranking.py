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
from tfx import v1 as tfx
from tfx.dsl.components.base import base_node
from tfx.types import channel, standard_artifacts

from components.ranking_trainer.component import RankingTrainer
from components.resolvers import LatestBeforeSpan, LatestBlessedBeforeSpan
from formats import artifacts
from pipeline.configs import PipelineConfig
from pipeline.stages.semantic_ids import INTERACTIONS_SPLIT, SidArtifacts

RANKING_TRAINER = "RankingTrainer"


def _trained_models() -> tfx.dsl.Channel:
  return tfx.dsl.Channel(type=standard_artifacts.Model, producer_component_id=RANKING_TRAINER,
                         output_key="model")


def latest_state(span: int) -> tfx.dsl.Resolver:
  """The feature state after the latest span before `span` (a daily run's, or the SID refresh's backfill)."""
  return tfx.dsl.Resolver(strategy_class=LatestBeforeSpan, config={"span": span},
                          state=tfx.dsl.Channel(type=artifacts.FeatureState)).with_id("LatestFeatureState")


def latest_sid_artifacts(span: int) -> tuple[SidArtifacts, tfx.dsl.Resolver]:
  """The SID refresh's frozen models and vocabulary, and the latest catalog (refresh or daily) before `span`."""
  resolver = tfx.dsl.Resolver(
      strategy_class=LatestBeforeSpan, config={"span": span},
      semantic_ids=tfx.dsl.Channel(type=artifacts.SemanticIds, producer_component_id="SemanticIdAssigner",
                                   output_key="semantic_ids"),
      embeddings=tfx.dsl.Channel(type=artifacts.ItemEmbeddings),
      vocabulary=tfx.dsl.Channel(type=artifacts.SidVocabulary),
      sid_encoder=tfx.dsl.Channel(type=standard_artifacts.Model, producer_component_id="RQVAETrainer",
                                  output_key="model"),
      text_encoder=tfx.dsl.Channel(type=standard_artifacts.Model, producer_component_id="ContentEmbedder",
                                   output_key="encoder"),
  ).with_id("LatestSidArtifacts")
  return SidArtifacts(**{key: resolver.outputs[key] for key in (
      "semantic_ids", "embeddings", "vocabulary", "sid_encoder", "text_encoder")}), resolver


@dataclasses.dataclass
class RankingStage:
  trainer: RankingTrainer
  nodes: List[base_node.BaseNode]


def warmup(config: PipelineConfig, examples: channel.BaseChannel, sids: SidArtifacts) -> RankingStage:
  """The SID refresh's ranking model, trained on the backfill from scratch: new SIDs and a new vocabulary
  give the embedding tables new meanings, so the daily chain restarts from it."""
  trainer = _trainer(config, examples, sids, base_model=None, scored_before_training=False)
  return RankingStage(trainer, [trainer])


def daily(config: PipelineConfig, span: int, examples: channel.BaseChannel, sids: SidArtifacts) -> RankingStage:
  """Evaluate the latest model on span `span` against the latest blessed one, push it if blessed, and
  train the next model on the span, warm-started from it."""
  latest_model = tfx.dsl.Resolver(strategy_class=LatestBeforeSpan, config={"span": span},
                                  model=_trained_models()).with_id("LatestModel")
  blessed_model = tfx.dsl.Resolver(
      strategy_class=LatestBlessedBeforeSpan, config={"span": span - 1}, model=_trained_models(),
      model_blessing=tfx.dsl.Channel(type=standard_artifacts.ModelBlessing)).with_id("LatestBlessedModel")
  evaluator = tfx.components.Evaluator(
      examples=examples, model=latest_model.outputs["model"], baseline_model=blessed_model.outputs["model"],
      eval_config=eval_config(config.min_auc, config.max_auc_regression), example_splits=[INTERACTIONS_SPLIT])
  pusher = tfx.components.Pusher(
      model=latest_model.outputs["model"], model_blessing=evaluator.outputs["blessing"],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_model_dir)))
  trainer = _trainer(config, examples, sids, base_model=latest_model.outputs["model"],
                     scored_before_training=True)
  return RankingStage(trainer, [latest_model, blessed_model, evaluator, pusher, trainer])


def _trainer(config: PipelineConfig, examples: channel.BaseChannel, sids: SidArtifacts,
             base_model: Optional[channel.BaseChannel], scored_before_training: bool) -> RankingTrainer:
  """With scored_before_training, the trainer also scores the span with the incoming model before it
  trains on it (models/ranking/trainer.py): its own figure beside TFMA's."""
  return RankingTrainer(
      examples=examples, semantic_ids=sids.semantic_ids, vocabulary=sids.vocabulary,
      embeddings=sids.embeddings, sid_encoder=sids.sid_encoder, text_encoder=sids.text_encoder,
      base_model=base_model, train_splits=[INTERACTIONS_SPLIT],
      eval_splits=[INTERACTIONS_SPLIT] if scored_before_training else [],
      ranking_config=config.ranking).with_id(RANKING_TRAINER)


def eval_config(min_auc: float, max_auc_regression: float) -> tfma.EvalConfig:
  """AUC (blessing: >= min_auc overall, and no more than max_auc_regression below the blessed baseline),
  example count and calibration, overall and per item segment (cold_start, long_tail, head: written by
  the ingestion from earlier spans only)."""
  return tfma.EvalConfig(
      model_specs=[
          tfma.ModelSpec(name="candidate", signature_name="serving_default", label_key="liked",
                         prediction_key="probability"),
          tfma.ModelSpec(name="baseline", signature_name="serving_default", label_key="liked",
                         prediction_key="probability", is_baseline=True)],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["item_segment"])],
      options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)),
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
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
