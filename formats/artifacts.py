"""Artifact types of the project's own components (TFX standard types are used wherever they fit)."""

from tfx.types.artifact import Artifact


class IngestionReport(Artifact):
  """ingestion_report.json (span counts, label balance, first-seen items, bad rows) + quarantine.jsonl."""
  TYPE_NAME = "sid_ranking.IngestionReport"


class ItemEmbeddings(Artifact):
  """Item id -> content embedding, as GZIP TFRecords of tf.Example {item_id, embedding}."""
  TYPE_NAME = "sid_ranking.ItemEmbeddings"


class SemanticIds(Artifact):
  """Item id -> Semantic ID (L codes + a collision suffix), as GZIP TFRecords of tf.Example."""
  TYPE_NAME = "sid_ranking.SemanticIds"


class SidQualityReport(Artifact):
  """report.json, report.html and PNG plots on a Semantic-ID assignment."""
  TYPE_NAME = "sid_ranking.SidQualityReport"


class SidVocabulary(Artifact):
  """SentencePiece models over Semantic IDs, one per embedding table budget, + vocabulary.json."""
  TYPE_NAME = "sid_ranking.SidVocabulary"


class SidAdaptationReport(Artifact):
  """report.json and figure4.png: embedding lookups per item and table rows used per SID adaptation."""
  TYPE_NAME = "sid_ranking.SidAdaptationReport"


class FeatureState(Artifact):
  """What the interaction features need from the past, after a span: per user the recent items and
  counters, per item its first-seen span and counters (formats/feature_state.py). Carried from one
  daily run to the next, so that no run re-reads history. Custom property `span`: the last span in it."""
  TYPE_NAME = "sid_ranking.FeatureState"
