"""Artifact types of the project's own components (TFX standard types are used wherever they fit).

Each TYPE_NAME is "formats.<class name>", an import path that formats/__init__.py resolves: on Kubeflow
Pipelines v2 / Vertex, TFX writes a custom type's TYPE_NAME as its schema title and the component
container imports the class by that title. The frozen RQ-VAE and the content encoder have types of
their own so that a query by type tells them from the ranking model (a standard Model).
"""

from tfx.types.artifact import Artifact

# What one component writes and others read, beside the types below.
# Custom properties: TextEncoderModel's `exported` (0: not written), RQVAEModel's `version` (v1, or v0),
# SemanticIds' `rqvae_version` (the RQ-VAE's that assigned them), a trained Model's `model_kind` (ranking or
# retrieval: both trainers write standard Models, which a query by type alone cannot tell apart).
EXPORTED, VERSION, RQVAE_VERSION = "exported", "version", "rqvae_version"
MODEL_KIND, RANKING, RETRIEVAL = "model_kind", "ranking", "retrieval"
# Input keys of the components that read a Semantic-ID catalog (the trainers, the pusher, the evaluator).
SEMANTIC_IDS, VOCABULARY, EMBEDDINGS = "semantic_ids", "vocabulary", "embeddings"
# The prefix of the Semantic IDs and vocabulary a ranking model was trained on, when a SID refresh remaps it.
PREVIOUS = "previous_"
# Files and splits: IngestionReport's report, SpanExampleGen's interactions split, the retrieval
# evaluation's metrics (ModelEvaluation) and the SidVocabulary's report.
INGESTION_REPORT_FILE = "ingestion_report.json"
INTERACTIONS_SPLIT = "interactions"
RETRIEVAL_METRICS_FILE = "retrieval_metrics.json"
SID_VOCABULARY_REPORT_FILE = "report.json"


class IngestionReport(Artifact):
  """ingestion_report.json (span counts, label balance, first-seen items, bad rows) + quarantine.jsonl."""
  TYPE_NAME = "formats.IngestionReport"


class ItemEmbeddings(Artifact):
  """Item id -> content embedding, as GZIP TFRecords of tf.Example {item_id, embedding}."""
  TYPE_NAME = "formats.ItemEmbeddings"


class SemanticIds(Artifact):
  """Item id -> Semantic ID (L codes + a collision suffix), as GZIP TFRecords of tf.Example."""
  TYPE_NAME = "formats.SemanticIds"


class SidQualityReport(Artifact):
  """report.json, report.html and PNG plots on a Semantic-ID assignment."""
  TYPE_NAME = "formats.SidQualityReport"


class SidVocabulary(Artifact):
  """SentencePiece models over Semantic IDs, one per embedding table budget, + vocabulary.json."""
  TYPE_NAME = "formats.SidVocabulary"


class SidAdaptationReport(Artifact):
  """report.json and figure4.png: embedding lookups per item and table rows used per SID adaptation."""
  TYPE_NAME = "formats.SidAdaptationReport"


class FeatureState(Artifact):
  """What the interaction features need from the past, after a span: per user the recent items and
  counters, per item its first-seen span and counters (formats/feature_state.py). Carried from one
  daily run to the next, so that no run re-reads history. Custom property `span`: the last span in it."""
  TYPE_NAME = "formats.FeatureState"


class RQVAEModel(Artifact):
  """The frozen RQ-VAE of models/rqvae: a SavedModel (`encode`, `decode`) under Format-Serving/, as a
  standard Model holds it, and training_history.json. Custom property `version` (v1, or v0 trained on
  early items only)."""
  TYPE_NAME = "formats.RQVAEModel"


class TextEncoderModel(Artifact):
  """The content text encoder of models/content_encoder: a SavedModel (string -> embedding) under
  Format-Serving/, as a standard Model holds it. Custom property `exported`: 0 when the component did not
  write it (the artifact is then empty)."""
  TYPE_NAME = "formats.TextEncoderModel"
