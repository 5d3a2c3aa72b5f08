"""The Semantic-ID ranking pipeline: one `create_pipeline` for every runner (local, Kubeflow)."""

from typing import Any, Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline

import schemas
from components.content_embedder.component import ContentEmbedder
from components.embedding_importer.component import EmbeddingImporter
from components.movielens_example_gen.component import MovieLensExampleGen
from components.rqvae_trainer.component import RQVAETrainer
from components.semantic_id_assigner.component import SemanticIdAssigner
from components.sid_quality_report.component import SidQualityReport
from components.sid_vocab_builder.component import SidVocabBuilder


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    span_period: str,
    start_date: Optional[str],
    history_length: int,
    max_tags: int,
    bad_row_policy: str,
    max_bad_row_fraction: float,
    embedding_batch_size: int,
    rqvae_config: Dict[str, Any],
    sid_table_budgets: List[int],
    sid_vocab_train_splits: List[str],
    rqvae_v0_cutoff: Optional[str] = None,
    precomputed_embeddings: Optional[str] = None,
    embedding_dim: Optional[int] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    enable_cache: bool = True,
) -> tfx_pipeline.Pipeline:
  """Ingestion and validation of interactions and items, item content embeddings, then Semantic IDs
  (RQ-VAE v1 on all items; with `rqvae_v0_cutoff`, also v0 on items seen before it), then SentencePiece
  vocabularies over the SIDs, one per embedding table budget, learned from `sid_vocab_train_splits`.

  Item embeddings come from the TensorFlow MiniLM encoder, or from `precomputed_embeddings` (an .npz
  of item_ids and embeddings) when given.
  """
  example_gen = MovieLensExampleGen(
      input_base=data_root, span_period=span_period, start_date=start_date,
      history_length=history_length, max_tags=max_tags, bad_row_policy=bad_row_policy,
      max_bad_row_fraction=max_bad_row_fraction)

  statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
  schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
  interactions_schema = tfx.components.ImportSchemaGen(
      schema_file=schemas.INTERACTIONS_SCHEMA).with_id("InteractionsSchema")
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=interactions_schema.outputs["schema"])

  item_statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs["items"]).with_id("ItemStatisticsGen")
  items_schema = tfx.components.ImportSchemaGen(schema_file=schemas.ITEMS_SCHEMA).with_id("ItemsSchema")
  item_validator = tfx.components.ExampleValidator(
      statistics=item_statistics_gen.outputs["statistics"],
      schema=items_schema.outputs["schema"]).with_id("ItemExampleValidator")

  if precomputed_embeddings:
    embeddings = EmbeddingImporter(items=example_gen.outputs["items"],
                                   embeddings_path=precomputed_embeddings, dim=embedding_dim)
  else:
    embeddings = ContentEmbedder(items=example_gen.outputs["items"], batch_size=embedding_batch_size)

  rqvae = RQVAETrainer(embeddings=embeddings.outputs["embeddings"], items=example_gen.outputs["items"],
                       config=rqvae_config, version="v1")
  sid_assigner = SemanticIdAssigner(embeddings=embeddings.outputs["embeddings"],
                                    model=rqvae.outputs["model"])
  sid_components = [rqvae, sid_assigner]
  sid_assigner_v0 = None
  if rqvae_v0_cutoff:
    rqvae_v0 = RQVAETrainer(
        embeddings=embeddings.outputs["embeddings"], items=example_gen.outputs["items"],
        config=rqvae_config, train_items_first_seen_before=rqvae_v0_cutoff, version="v0",
    ).with_id("RQVAETrainerV0")
    sid_assigner_v0 = SemanticIdAssigner(embeddings=embeddings.outputs["embeddings"],
                                         model=rqvae_v0.outputs["model"]).with_id("SemanticIdAssignerV0")
    sid_components += [rqvae_v0, sid_assigner_v0]
  sid_report = SidQualityReport(
      embeddings=embeddings.outputs["embeddings"], items=example_gen.outputs["items"],
      semantic_ids=sid_assigner.outputs["semantic_ids"], model=rqvae.outputs["model"],
      semantic_ids_v0=sid_assigner_v0.outputs["semantic_ids"] if sid_assigner_v0 else None)
  sid_vocab = SidVocabBuilder(
      semantic_ids=sid_assigner.outputs["semantic_ids"], examples=example_gen.outputs["examples"],
      items=example_gen.outputs["items"], table_budgets=sid_table_budgets,
      train_splits=sid_vocab_train_splits)
  sid_components += [sid_report, sid_vocab]

  return tfx_pipeline.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, interactions_schema, example_validator,
                  item_statistics_gen, items_schema, item_validator, embeddings, *sid_components],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args)
