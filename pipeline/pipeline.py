"""The Semantic-ID ranking pipeline: one `create_pipeline` for every runner (local, Kubeflow)."""

from typing import Any, Dict, List, Optional

import tensorflow_model_analysis as tfma
from google.protobuf import wrappers_pb2
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline

import schemas
from components.content_embedder.component import ContentEmbedder
from components.embedding_importer.component import EmbeddingImporter
from formats import spans
from components.movielens_example_gen.component import MovieLensExampleGen
from components.ranking_trainer.component import RankingTrainer
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
    ranking_config: Dict[str, Any],
    ranking_spans: List[int],
    min_auc: float,
    serving_model_dir: str,
    rqvae_v0_cutoff: Optional[str] = None,
    precomputed_embeddings: Optional[str] = None,
    embedding_dim: Optional[int] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    enable_cache: bool = True,
) -> tfx_pipeline.Pipeline:
  """Ingestion and validation of interactions and items, item content embeddings, then Semantic IDs
  (RQ-VAE v1 on all items; with `rqvae_v0_cutoff`, also v0 on items seen before it), then SentencePiece
  vocabularies over the SIDs, one per embedding table budget, learned from `sid_vocab_train_splits`;
  then the ranking model, trained continuously: a warm-up step on everything before
  `ranking_spans[0]`, then one step per span N (warm-started from step N-1, trained on span N only),
  each evaluated by TFMA on span N+1. The last step's blessing (AUC >= min_auc) gates the Pusher.
  Adding a span to `ranking_spans` adds one step; the earlier ones come from the cache.

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

  ranking_components = []
  previous_model = None
  first_span = spans.span_of_date(start_date, span_period) if start_date else ranking_spans[0]
  steps = [("Warmup", ["backfill"] + [spans.split_name(s) for s in range(first_span, ranking_spans[0])],
            ranking_spans[0])]
  steps += [(spans.span_start(s, span_period).strftime("%Y_%m_%d"), [spans.split_name(s)], s + 1)
            for s in ranking_spans]
  for name, train_splits, eval_span in steps:
    trainer = RankingTrainer(
        examples=example_gen.outputs["examples"], semantic_ids=sid_assigner.outputs["semantic_ids"],
        vocabulary=sid_vocab.outputs["vocabulary"], embeddings=embeddings.outputs["embeddings"],
        sid_encoder=rqvae.outputs["model"], text_encoder=embeddings.outputs.get("encoder"),
        base_model=previous_model, train_splits=train_splits, eval_splits=[spans.split_name(eval_span)],
        ranking_config=ranking_config).with_id(f"RankingTrainer_{name}")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
        eval_config=ranking_eval_config(min_auc),
        example_splits=[spans.split_name(eval_span)]).with_id(f"Evaluator_{name}")
    ranking_components += [trainer, evaluator]
    previous_model = trainer.outputs["model"]
  pusher = tfx.components.Pusher(
      model=previous_model, model_blessing=ranking_components[-1].outputs["blessing"],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)))
  ranking_components.append(pusher)

  return tfx_pipeline.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, interactions_schema, example_validator,
                  item_statistics_gen, items_schema, item_validator, embeddings, *sid_components,
                  *ranking_components],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args)


def ranking_eval_config(min_auc: float) -> tfma.EvalConfig:
  """AUC (blessing: >= min_auc overall), example count and calibration, overall and per item segment
  (cold_start, long_tail, head: written by MovieLensExampleGen from earlier spans only)."""
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key="liked",
                                  prediction_key="probability")],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["item_segment"])],
      options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)),
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
          # The blessing looks at the overall slice only: a month's cold-start slice holds ~100
          # interactions, too few to gate a release on.
          tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[tfma.PerSliceMetricThreshold(
              slicing_specs=[tfma.SlicingSpec()], threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_auc})))]),
          tfma.MetricConfig(class_name="BinaryCrossentropy"),
          tfma.MetricConfig(class_name="Calibration"),
      ])])
