"""Span-aware Resolver strategies for the daily loop: one pipeline run per span N.

TFX's LatestArtifactStrategy and LatestBlessedModelStrategy pick the artifact with the highest id.
In run N that can be one a killed earlier attempt of run N published (its span is N): the warm
start would then differ from the first attempt's, TFX's cache would miss and span N would be
trained twice. These strategies pick by the artifacts' int custom property `span` (RankingTrainer's
model, the ingestion's FeatureState) among spans before N, ties by the highest id. A SID refresh picks its
previous model likewise (PreviousModelAndItsInputs), with what that model was trained on.

Example, in the run of span N:
  latest = tfx.dsl.Resolver(
      strategy_class=LatestBeforeSpan, config={"span": N},
      model=tfx.dsl.Channel(type=standard_artifacts.Model, producer_component_id="RankingTrainer",
                            output_key="model")).with_id("LatestModel")
  baseline = tfx.dsl.Resolver(
      strategy_class=LatestBlessedBeforeSpan, config={"span": N},
      model=tfx.dsl.Channel(type=standard_artifacts.Model, producer_component_id="RankingTrainer",
                            output_key="model"),
      model_blessing=tfx.dsl.Channel(type=standard_artifacts.ModelBlessing,
                                     producer_component_id="Evaluator", output_key="blessing"),
  ).with_id("BaselineModel")
Nothing qualifying (the first run) resolves to empty lists, never None: the inputs they feed are
optional. Channels with a producer_component_id resolve within the pipeline_name, so the daily and
the SID refresh pipelines (one name, other nodes) see each other's artifacts.
"""

from typing import Dict, List

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.components.common import resolver

from formats import spans

SPAN, BACKFILL = spans.SPAN_PROPERTY, spans.BACKFILL_PROPERTY
MODEL, MODEL_BLESSING = "model", "model_blessing"
_BLESSED = evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY
_CURRENT_MODEL_ID = evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY
ArtifactDict = Dict[str, List[types.Artifact]]


def _live(artifact: types.Artifact) -> bool:
  return artifact.mlmd_artifact.state == metadata_store_pb2.Artifact.LIVE


def _latest_first_before(artifacts: List[types.Artifact], span: int) -> List[types.Artifact]:
  """The LIVE artifacts with a `span` before `span`, highest span first, then highest id."""
  kept = [a for a in artifacts
          if _live(a) and a.has_custom_property(SPAN) and a.get_int_custom_property(SPAN) < span]
  return sorted(kept, key=lambda a: (a.get_int_custom_property(SPAN), a.id), reverse=True)


class _BeforeSpan(resolver.ResolverStrategy):
  """A strategy configured with the run's span; the artifacts bring their properties, so it reads
  nothing more from the store."""

  def __init__(self, span: int):
    self._span = span


class LatestBeforeSpan(_BeforeSpan):
  """For each input key, the latest artifact of a span before `span` ([] when none)."""

  def resolve_artifacts(self, store: metadata_store.MetadataStore,
                        input_dict: ArtifactDict) -> ArtifactDict:
    del store
    return {key: _latest_first_before(artifacts, self._span)[:1] for key, artifacts in input_dict.items()}


class PreviousModelAndItsInputs(_BeforeSpan):
  """For a SID refresh whose daily runs start at span `span`: the latest LIVE `model` trained before it, and
  under every other key the artifact its trainer read under that key (the Semantic IDs, vocabulary and
  RQ-VAE it was trained with, which the refresh starts from and remaps it from).

  Before it: a daily run's model of a span before `span`, or a refresh's warm-up (`backfill` 1) of a span
  before `span` - 1. A warm-up of span `span` - 1 is this refresh's own (a refresh is its start): from a
  killed attempt or an earlier run, which a rerun must not start from, so that it repeats the same work
  and TFX's cache reuses what was done. A model of a later span (daily runs already past the start) has
  seen what the refresh's models will be scored on. The inputs come from ML Metadata's lineage: the newest
  of each would pair a model with SIDs it was never trained on (after a refresh killed between its
  SemanticIdAssigner and its trainers). Nothing under any key (from scratch) when there is no such model or
  one of its inputs is not among the candidates."""

  def _before(self, model: types.Artifact) -> bool:
    backfill = model.has_custom_property(BACKFILL) and model.get_int_custom_property(BACKFILL) == 1
    return model.get_int_custom_property(SPAN) < self._span - (1 if backfill else 0)

  def resolve_artifacts(self, store: metadata_store.MetadataStore,
                        input_dict: ArtifactDict) -> ArtifactDict:
    nothing = {key: [] for key in input_dict}
    models = [m for m in _latest_first_before(input_dict[MODEL], self._span) if self._before(m)][:1]
    if not models:
      return nothing
    events = store.get_events_by_artifact_ids([models[0].id])
    trainers = [e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    read: Dict[str, set] = {}
    for event in store.get_events_by_execution_ids(trainers):
      if event.type == metadata_store_pb2.Event.INPUT:
        read.setdefault(event.path.steps[0].key, set()).add(event.artifact_id)
    resolved = {MODEL: models}
    for key, candidates in input_dict.items():
      if key != MODEL:
        resolved[key] = [a for a in candidates if a.id in read.get(key, ())][:1]
        if not resolved[key]:
          return nothing
    return resolved


class LatestBlessedBeforeSpan(_BeforeSpan):
  """The latest blessed `model` of a span before `span` and its `model_blessing` ([] and [] when none).

  A blessing, as LatestBlessedModelStrategy reads it, is a ModelBlessing with custom property
  blessed=1 whose current_model_id is the model's id.
  """

  def resolve_artifacts(self, store: metadata_store.MetadataStore,
                        input_dict: ArtifactDict) -> ArtifactDict:
    del store
    blessings = {b.get_int_custom_property(_CURRENT_MODEL_ID): b for b in input_dict[MODEL_BLESSING]
                 if _live(b) and b.get_int_custom_property(_BLESSED) == 1}
    for model in _latest_first_before(input_dict[MODEL], self._span):
      if model.id in blessings:
        return {MODEL: [model], MODEL_BLESSING: [blessings[model.id]]}
    return {MODEL: [], MODEL_BLESSING: []}
