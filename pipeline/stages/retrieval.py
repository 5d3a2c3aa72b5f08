"""Retrieval: TIGER trained beside the ranker over the same Semantic IDs, and the two-stage `recommend` pushed.

The SID refresh trains the retrieval model from scratch on the backfill (a refresh gives the SID tokens new
meanings); or, with config.refresh_warm_start "remap", fits the latest one's tokens to the new SIDs
(models/retrieval/remap.py) and trains it on the latest interactions only. A daily run for span N follows
the ranker's rules (pipeline/stages/ranking.py): the latest retrieval model (trained through span N-1) is
scored on span N against the blessed one and pushed when blessed (RetrievalEvaluator: full-catalog
Recall@10), then trained on span N, warm-started. Last, the RecommenderPusher assembles the served ranking
and retrieval versions with the run's catalog, in which the span's new items have their SIDs, and pushes
`recommend`.
"""

import dataclasses
from typing import List, Optional

from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import base_node
from tfx.dsl.components.common.resolver import Resolver
from tfx.proto import pusher_pb2
from tfx.types import channel, standard_artifacts

from components.recommender_pusher.component import RecommenderPusher
from components.retrieval_evaluator.component import RetrievalEvaluator
from components.retrieval_trainer.component import RetrievalTrainer
from pipeline.configs import PipelineConfig
from pipeline.stages import semantic_ids
from pipeline.stages.ingestion import Span
from pipeline.stages.ranking import resolver
from pipeline.stages.semantic_ids import INTERACTIONS_SPLIT, SidArtifacts

RETRIEVAL_TRAINER, RETRIEVAL_EVALUATOR = "RetrievalTrainer", "RetrievalEvaluator"


@dataclasses.dataclass
class RetrievalStage:
  trainer: RetrievalTrainer
  nodes: List[base_node.BaseNode]


def _trained_models() -> channel.Channel:
  return channel.Channel(type=standard_artifacts.Model, producer_component_id=RETRIEVAL_TRAINER, output_key="model")


def _trainer(config: PipelineConfig, examples: channel.BaseChannel, sids: SidArtifacts,
             base_model: Optional[channel.BaseChannel], previous: Optional[Resolver] = None) -> RetrievalTrainer:
  """With `previous` (semantic_ids.previous_model), `base_model` was trained on its Semantic IDs."""
  # No eval split: the RetrievalEvaluator scores the model the trainer starts from on the same span and sample
  # (its candidate), and a beam search per interaction is the daily run's largest cost after training.
  return RetrievalTrainer(examples=examples, semantic_ids=sids.semantic_ids, base_model=base_model,
                          previous_semantic_ids=previous.outputs["semantic_ids"] if previous else None,
                          train_splits=[INTERACTIONS_SPLIT], eval_splits=[],
                          retrieval_config=config.retrieval).with_id(RETRIEVAL_TRAINER)


def warmup(config: PipelineConfig, examples: channel.BaseChannel, sids: SidArtifacts,
           stock_resolvers: bool = False) -> RetrievalStage:
  """The SID refresh's retrieval model: trained on the backfill from scratch, or (refresh_warm_start "remap")
  the latest one (none in a first refresh: from scratch) remapped onto the new SIDs."""
  if config.refresh_warm_start != "remap":
    trainer = _trainer(config, examples, sids, base_model=None)
    return RetrievalStage(trainer, [trainer])
  previous = semantic_ids.previous_model("PreviousRetrievalModel", config, stock_resolvers, RETRIEVAL_TRAINER,
                                         ["semantic_ids"])
  trainer = _trainer(config, examples, sids, base_model=previous.outputs["model"], previous=previous)
  return RetrievalStage(trainer, [previous, trainer])


def daily(config: PipelineConfig, span: Span, examples: channel.BaseChannel, sids: SidArtifacts,
          ranking_pusher: Pusher) -> RetrievalStage:
  """Score the latest retrieval model on span `span` against the blessed one, push it if blessed, push the
  two-stage model over the run's catalog, and train the next retrieval model on the span."""
  latest = resolver("LatestRetrievalModel", span, model=_trained_models())
  blessed = resolver("LatestBlessedRetrievalModel", span, blessed=True, model=_trained_models(),
                     model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing,
                                                    producer_component_id=RETRIEVAL_EVALUATOR, output_key="blessing"))
  evaluator = RetrievalEvaluator(
      examples=examples, model=latest.outputs["model"], baseline_model=blessed.outputs["model"],
      semantic_ids=sids.semantic_ids, split=INTERACTIONS_SPLIT, min_recall=config.min_recall_at_10,
      max_recall_regression=config.max_recall_regression, min_examples=config.min_eval_examples,
      recommender_base_directory=config.recommender_serving_dir).with_id(RETRIEVAL_EVALUATOR)
  pusher = Pusher(
      model=latest.outputs["model"], model_blessing=evaluator.outputs["blessing"],
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=config.retrieval_serving_dir))
  ).with_id("RetrievalPusher")
  recommender = RecommenderPusher(
      semantic_ids=sids.semantic_ids, embeddings=sids.embeddings,
      ranking_push=ranking_pusher.outputs["pushed_model"], retrieval_push=pusher.outputs["pushed_model"],
      ranking_base_directory=config.serving_model_dir, retrieval_base_directory=config.retrieval_serving_dir,
      base_directory=config.recommender_serving_dir, num_candidates=config.num_candidates)
  trainer = _trainer(config, examples, sids, base_model=latest.outputs["model"])
  return RetrievalStage(trainer, [latest, blessed, evaluator, pusher, recommender, trainer])
