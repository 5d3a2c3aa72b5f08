"""Content embeddings and Semantic IDs: the SID refresh's full build, and the daily runs' new items.

Node ids are shared by both shapes where the role is the same (SemanticIdAssigner), so that a daily
run's resolver finds the latest Semantic IDs whichever shape wrote them (pipeline/stages/frozen.py).
"""

import dataclasses
from typing import List, Optional, Sequence

from tfx.dsl.components.base import base_node
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.types import channel, standard_artifacts

from components.content_embedder.component import ContentEmbedder
from components.embedding_importer.component import EmbeddingImporter
from components.resolvers import PreviousModelAndItsInputs
from components.encoder_pusher.component import EncoderPusher
from components.rqvae_trainer.component import RQVAETrainer
from components.semantic_id_assigner.component import SemanticIdAssigner
from components.sid_quality_report.component import SidQualityReport
from components.sid_vocab_builder.component import SidVocabBuilder
from formats import artifacts, spans
from pipeline.configs import PipelineConfig

# The split of SpanExampleGen's examples (the backfill's interactions in the SID refresh).
INTERACTIONS_SPLIT = "interactions"
# The version of the RQ-VAE that the daily runs use (the other, v0, is for comparison only).
FROZEN_RQVAE_VERSION = "v1"


@dataclasses.dataclass
class SidArtifacts:
  """Channels of the frozen SID artifacts the ranking and retrieval stages consume."""
  semantic_ids: channel.BaseChannel
  embeddings: channel.BaseChannel
  vocabulary: channel.BaseChannel
  sid_encoder: channel.BaseChannel
  text_encoder: Optional[channel.BaseChannel]


# What a trainer reads under each key, as a SID refresh resolves what the previous model was trained with.
_TRAINER_INPUTS = {
    "semantic_ids": lambda: channel.Channel(type=artifacts.SemanticIds, producer_component_id="SemanticIdAssigner",
                                            output_key="semantic_ids"),
    "vocabulary": lambda: channel.Channel(type=artifacts.SidVocabulary, producer_component_id="SidVocabBuilder",
                                          output_key="vocabulary"),
    "sid_encoder": lambda: channel.Channel(type=artifacts.RQVAEModel, producer_component_id="RQVAETrainer",
                                           output_key="model"),
}


def previous_model(node_id: str, config: PipelineConfig, stock_resolvers: bool, trainer: str,
                   inputs: Sequence[str]) -> Resolver:
  """The SID refresh's previous model: the latest model of `trainer` of a span before config.start_date's,
  with the artifacts it read under `inputs` (PreviousModelAndItsInputs: its Semantic IDs, vocabulary,
  RQ-VAE). With `stock_resolvers` (Kubeflow), the newest of each, which may pair a model with Semantic IDs it
  was not trained on after a killed refresh: rerun that one with refresh_warm_start scratch."""
  channels = {"model": channel.Channel(type=standard_artifacts.Model, producer_component_id=trainer,
                                       output_key="model"),
              **{key: _TRAINER_INPUTS[key]() for key in inputs}}
  if stock_resolvers:
    return Resolver(strategy_class=LatestArtifactStrategy, **channels).with_id(node_id)
  return Resolver(strategy_class=PreviousModelAndItsInputs,
                  config={"span": spans.span_of_date(config.start_date, config.span_period)},
                  **channels).with_id(node_id)


def previous_refresh(config: PipelineConfig, stock_resolvers: bool) -> Resolver:
  """The Semantic IDs the latest ranking model before this refresh was trained on (the previous refresh's,
  with the daily runs' new items), and with config.rqvae_warm_start the RQ-VAE that made them: nothing in a
  first refresh."""
  return previous_model("PreviousSidArtifacts", config, stock_resolvers, "RankingTrainer",
                        ["semantic_ids"] + (["sid_encoder"] if config.rqvae_warm_start else []))


def sid_refresh(config: PipelineConfig, items: channel.BaseChannel, examples: channel.BaseChannel,
                stock_resolvers: bool = False) -> tuple[SidArtifacts, List[base_node.BaseNode]]:
  """Item embeddings, RQ-VAE v1 (and v0 with config.rqvae_v0_cutoff), every item's SID, the quality
  report (with the share of SIDs changed since the previous refresh) and SentencePiece vocabularies learned
  from the backfill's impressions; the content encoder pushed to config.encoder_serving_dir, where the model
  server serves it for new items' texts."""
  if config.precomputed_embeddings:
    embedder = EmbeddingImporter(items=items, embeddings_path=config.precomputed_embeddings,
                                 dim=config.embedding_dim)
  else:
    embedder = ContentEmbedder(items=items, batch_size=config.embedding_batch_size)
  embeddings = embedder.outputs["embeddings"]
  nodes: List[base_node.BaseNode] = [embedder]
  if "encoder" in embedder.outputs:
    nodes.append(EncoderPusher(encoder=embedder.outputs["encoder"], base_directory=config.encoder_serving_dir))
  previous = previous_refresh(config, stock_resolvers)
  rqvae = RQVAETrainer(embeddings=embeddings, items=items, config=config.rqvae, version=FROZEN_RQVAE_VERSION,
                       base_model=previous.outputs.get("sid_encoder"))
  assigner = SemanticIdAssigner(embeddings=embeddings, model=rqvae.outputs["model"])
  nodes += [previous, rqvae, assigner]
  assigner_v0 = None
  if config.rqvae_v0_cutoff:
    rqvae_v0 = RQVAETrainer(embeddings=embeddings, items=items, config=config.rqvae,
                            train_items_first_seen_before=config.rqvae_v0_cutoff,
                            version="v0").with_id("RQVAETrainerV0")
    assigner_v0 = SemanticIdAssigner(embeddings=embeddings,
                                     model=rqvae_v0.outputs["model"]).with_id("SemanticIdAssignerV0")
    nodes += [rqvae_v0, assigner_v0]
  report = SidQualityReport(
      embeddings=embeddings, items=items, semantic_ids=assigner.outputs["semantic_ids"],
      model=rqvae.outputs["model"],
      semantic_ids_v0=assigner_v0.outputs["semantic_ids"] if assigner_v0 else None,
      previous_semantic_ids=previous.outputs["semantic_ids"])
  vocabulary = SidVocabBuilder(semantic_ids=assigner.outputs["semantic_ids"], examples=examples, items=items,
                               table_budgets=config.sid_table_budgets, train_splits=[INTERACTIONS_SPLIT])
  nodes += [report, vocabulary]
  return SidArtifacts(semantic_ids=assigner.outputs["semantic_ids"], embeddings=embeddings,
                      vocabulary=vocabulary.outputs["vocabulary"], sid_encoder=rqvae.outputs["model"],
                      text_encoder=embedder.outputs.get("encoder")), nodes


def new_items(config: PipelineConfig, items: channel.BaseChannel, frozen: SidArtifacts
              ) -> tuple[SidArtifacts, List[base_node.BaseNode]]:
  """The span's new items embedded by the frozen encoder and given SIDs by the frozen RQ-VAE, appended to
  the latest catalog: no retraining, old items untouched. With precomputed embeddings there is no encoder
  for new content: new items then have no SID and are scored by the model's fallback."""
  if config.precomputed_embeddings:
    return frozen, []
  embedder = ContentEmbedder(items=items, batch_size=config.embedding_batch_size,
                             previous_embeddings=frozen.embeddings, frozen_encoder=frozen.text_encoder,
                             export_encoder=False).with_id("NewItemEmbedder")
  assigner = SemanticIdAssigner(embeddings=embedder.outputs["embeddings"], model=frozen.sid_encoder,
                                previous_semantic_ids=frozen.semantic_ids)
  return dataclasses.replace(frozen, semantic_ids=assigner.outputs["semantic_ids"],
                             embeddings=embedder.outputs["embeddings"]), [embedder, assigner]
