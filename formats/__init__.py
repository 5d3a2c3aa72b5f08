"""Shared artifact formats and conventions (item embeddings, Semantic IDs, SID vocabularies, span
numbering, input errors): the low-level package that components/, models/, serving/ and pipeline/
all import. It imports none of them.

The artifact types of formats/artifacts.py are also attributes of this package, `formats.SemanticIds`
and so on, imported only when asked for (so importing `formats` does not import TFX): their TYPE_NAME
"formats.<class name>" is the import path by which a Kubeflow Pipelines v2 container loads them."""

_ARTIFACT_TYPES = frozenset({
    "IngestionReport", "ItemEmbeddings", "SemanticIds", "SidQualityReport", "SidVocabulary",
    "SidAdaptationReport", "FeatureState", "RQVAEModel", "TextEncoderModel"})


def __getattr__(name):  # PEP 562
  if name in _ARTIFACT_TYPES:
    from formats import artifacts
    return getattr(artifacts, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
