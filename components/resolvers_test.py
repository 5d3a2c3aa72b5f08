"""The span-aware resolvers in pipelines run by LocalDagRunner on one SQLite ML Metadata store, with
trivial components that only stamp their outputs' spans."""

import collections
import pathlib
from typing import Dict, List

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.resolvers import BACKFILL, SPAN, LatestBeforeSpan, LatestBlessedBeforeSpan, PreviousModelAndItsInputs
from formats import artifacts

PIPELINE = "sid_ranking"


@component
def Ingest(span: Parameter[int], state: OutputArtifact[artifacts.FeatureState],
           previous_state: InputArtifact[artifacts.FeatureState] = None):
  del previous_state  # recorded by ML Metadata as the execution's input
  state.set_int_custom_property(SPAN, span)


@component
def Train(span: Parameter[int], model: OutputArtifact[standard_artifacts.Model],
          base_model: InputArtifact[standard_artifacts.Model] = None):
  del base_model
  model.set_int_custom_property(SPAN, span)


@component
def Assign(span: Parameter[int], semantic_ids: OutputArtifact[artifacts.SemanticIds]):
  semantic_ids.set_int_custom_property(SPAN, span)


@component
def TrainOnSids(span: Parameter[int], backfill: Parameter[int], semantic_ids: InputArtifact[artifacts.SemanticIds],
                model: OutputArtifact[standard_artifacts.Model]):
  del semantic_ids
  model.set_int_custom_property(SPAN, span)
  if backfill:
    model.set_int_custom_property(BACKFILL, 1)


@component
def Evaluate(blessed: Parameter[int], model: InputArtifact[standard_artifacts.Model],
             blessing: OutputArtifact[standard_artifacts.ModelBlessing],
             baseline_model: InputArtifact[standard_artifacts.Model] = None):
  del baseline_model
  blessing.set_int_custom_property("blessed", blessed)
  blessing.set_int_custom_property("current_model_id", model.id)


@component
def Kill(model: InputArtifact[standard_artifacts.Model]):
  raise RuntimeError(f"killed after the trainer published {model.uri}")


def _channel(artifact_type, producer: str, key: str) -> tfx.dsl.Channel:
  return tfx.dsl.Channel(type=artifact_type, producer_component_id=producer, output_key=key)


def _pipeline(root: pathlib.Path, nodes) -> tfx.dsl.Pipeline:
  return tfx.dsl.Pipeline(
      pipeline_name=PIPELINE, pipeline_root=str(root / "pipeline"), components=nodes, enable_cache=True,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(root / "metadata.sqlite")))


def _refresh(root: pathlib.Path, span: int) -> tfx.dsl.Pipeline:
  """Another shape under the same pipeline_name: ingestion and training, no resolvers."""
  return _pipeline(root, [Ingest(span=span), Train(span=span)])


def _daily(root: pathlib.Path, span: int, blessed: int = 1, killed: bool = False) -> tfx.dsl.Pipeline:
  model = lambda: _channel(standard_artifacts.Model, "Train", "model")
  latest = tfx.dsl.Resolver(strategy_class=LatestBeforeSpan, config={"span": span}, model=model(),
                            state=_channel(artifacts.FeatureState, "Ingest", "state")).with_id("Latest")
  baseline = tfx.dsl.Resolver(
      strategy_class=LatestBlessedBeforeSpan, config={"span": span}, model=model(),
      model_blessing=_channel(standard_artifacts.ModelBlessing, "Evaluate", "blessing")).with_id("Baseline")
  ingest = Ingest(span=span, previous_state=latest.outputs["state"])
  train = Train(span=span, base_model=latest.outputs["model"])
  after = Kill(model=train.outputs["model"]) if killed else Evaluate(
      blessed=blessed, model=train.outputs["model"], baseline_model=baseline.outputs["model"])
  return _pipeline(root, [latest, baseline, ingest, train, after])


def _run(pipeline: tfx.dsl.Pipeline) -> None:
  tfx.orchestration.LocalDagRunner().run(pipeline)


def _store(root: pathlib.Path) -> metadata_store.MetadataStore:
  return metadata_store.MetadataStore(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(str(root / "metadata.sqlite")))


def _last_execution(store: metadata_store.MetadataStore, node: str) -> metadata_store_pb2.Execution:
  context = store.get_context_by_type_and_name("node", f"{PIPELINE}.{node}")
  return max(store.get_executions_by_context(context.id), key=lambda e: e.id)


def _events(store: metadata_store.MetadataStore, execution: metadata_store_pb2.Execution,
            event_type: int) -> List[metadata_store_pb2.Event]:
  return [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == event_type]


def _inputs(store: metadata_store.MetadataStore, node: str) -> Dict[str, List[int]]:
  """{key: spans of the input artifacts} of the node's last execution."""
  events = _events(store, _last_execution(store, node), metadata_store_pb2.Event.INPUT)
  by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  spans = collections.defaultdict(list)
  for event in events:
    spans[event.path.steps[0].key].append(by_id[event.artifact_id].custom_properties[SPAN].int_value)
  return dict(spans)


def test_no_model_yet_resolves_to_nothing_and_the_run_goes_on(tmp_path):
  _run(_daily(tmp_path, 10))
  store = _store(tmp_path)
  assert _inputs(store, "Ingest") == {} and _inputs(store, "Train") == {}
  assert _inputs(store, "Evaluate") == {"model": [10]}


def test_daily_runs_resolve_spans_before_their_own(tmp_path):
  store = _store(tmp_path)
  # The refresh shape's artifacts are found by the daily shape's resolvers: same pipeline_name.
  _run(_refresh(tmp_path, 9))
  _run(_daily(tmp_path, 10))
  assert _inputs(store, "Ingest") == {"previous_state": [9]}
  assert _inputs(store, "Train") == {"base_model": [9]}
  assert _inputs(store, "Evaluate") == {"model": [10]}  # model 9 was never evaluated: no baseline

  _run(_daily(tmp_path, 11, blessed=0))
  assert _inputs(store, "Evaluate") == {"model": [11], "baseline_model": [10]}
  _run(_daily(tmp_path, 12))
  # Step 11 was not blessed: the baseline is the older blessed model, the warm start is step 11.
  assert _inputs(store, "Train") == {"base_model": [11]}
  assert _inputs(store, "Evaluate") == {"model": [12], "baseline_model": [10]}

  with pytest.raises(RuntimeError, match="killed after the trainer published"):
    _run(_daily(tmp_path, 13, killed=True))
  killed = _last_execution(store, "Train")
  _run(_daily(tmp_path, 13))
  # The re-run warm-starts from step 12 as the killed attempt did, not from the killed attempt's
  # model of span 13, so TFX's cache hands the killed attempt's model over instead of training again.
  rerun = _last_execution(store, "Train")
  assert rerun.last_known_state == metadata_store_pb2.Execution.CACHED
  assert _inputs(store, "Train") == {"base_model": [12]}
  assert _inputs(store, "Ingest") == {"previous_state": [12]}
  outputs = [[e.artifact_id for e in _events(store, execution, metadata_store_pb2.Event.OUTPUT)]
             for execution in (rerun, killed)]
  assert outputs[0] == outputs[1]
  assert _inputs(store, "Evaluate") == {"model": [13], "baseline_model": [12]}


def _artifact(artifact_type, artifact_id: int, state=metadata_store_pb2.Artifact.LIVE, **int_properties):
  artifact = artifact_type()
  artifact.id = artifact_id
  artifact.mlmd_artifact.state = state
  for key, value in int_properties.items():
    artifact.set_int_custom_property(key, value)
  return artifact


def test_latest_before_span_breaks_ties_by_id_and_skips_unfinished_and_unspanned_artifacts():
  models = [_artifact(standard_artifacts.Model, 1, span=4), _artifact(standard_artifacts.Model, 3, span=4),
            _artifact(standard_artifacts.Model, 2, span=4), _artifact(standard_artifacts.Model, 5),
            _artifact(standard_artifacts.Model, 6, span=5, state=metadata_store_pb2.Artifact.PENDING),
            _artifact(standard_artifacts.Model, 7, span=9)]
  resolved = LatestBeforeSpan(span=9).resolve_artifacts(None, {"model": models, "state": []})
  assert [a.id for a in resolved["model"]] == [3] and resolved["state"] == []


def test_latest_blessed_before_span_reads_blessed_and_current_model_id():
  models = [_artifact(standard_artifacts.Model, i, span=s) for i, s in ((1, 3), (2, 4), (3, 5))]
  blessings = [_artifact(standard_artifacts.ModelBlessing, 10, blessed=1, current_model_id=1),
               _artifact(standard_artifacts.ModelBlessing, 11, blessed=0, current_model_id=2),
               _artifact(standard_artifacts.ModelBlessing, 12, blessed=1, current_model_id=3)]
  resolve = lambda span: LatestBlessedBeforeSpan(span=span).resolve_artifacts(
      None, {"model": models, "model_blessing": blessings})
  assert {k: [a.id for a in v] for k, v in resolve(5).items()} == {"model": [1], "model_blessing": [10]}
  assert {k: [a.id for a in v] for k, v in resolve(6).items()} == {"model": [3], "model_blessing": [12]}
  assert resolve(3) == {"model": [], "model_blessing": []}


@component
def Remap(base_model: InputArtifact[standard_artifacts.Model] = None,
          previous_semantic_ids: InputArtifact[artifacts.SemanticIds] = None):
  del base_model, previous_semantic_ids


def _refresh_at(root: pathlib.Path, span: int) -> tfx.dsl.Pipeline:
  """A SID refresh whose daily runs start at `span`: its previous model, with the SIDs it was trained on."""
  previous = tfx.dsl.Resolver(strategy_class=PreviousModelAndItsInputs, config={"span": span},
                              model=_channel(standard_artifacts.Model, "TrainOnSids", "model"),
                              semantic_ids=_channel(artifacts.SemanticIds, "Assign", "semantic_ids")
                              ).with_id("Previous")
  return _pipeline(root, [previous, Remap(base_model=previous.outputs["model"],
                                          previous_semantic_ids=previous.outputs["semantic_ids"])])


def _train_on_sids(root: pathlib.Path, span: int, backfill: int) -> None:
  assign = Assign(span=span)
  train = TrainOnSids(span=span, backfill=backfill, semantic_ids=assign.outputs["semantic_ids"])
  _run(_pipeline(root, [assign, train]))


def test_a_refresh_starts_from_the_latest_model_before_it_with_the_semantic_ids_it_was_trained_on(tmp_path):
  store = _store(tmp_path)
  _run(_refresh_at(tmp_path, 5))
  assert _inputs(store, "Remap") == {}  # a first refresh: nothing, so from scratch
  _train_on_sids(tmp_path, 4, backfill=1)  # its warm-up, on its SIDs
  _run(_refresh_at(tmp_path, 5))
  assert _inputs(store, "Remap") == {}  # the same refresh again: not from its own warm-up
  _train_on_sids(tmp_path, 5, backfill=0)  # a daily run
  # A refresh at span 7 killed after its warm-up (span 6, on new SIDs); a daily model of span 7 (the loop ran
  # on): the rerun starts from the daily model of span 5 and the SIDs it read.
  _train_on_sids(tmp_path, 6, backfill=1)
  _train_on_sids(tmp_path, 7, backfill=0)
  _run(_refresh_at(tmp_path, 7))
  assert _inputs(store, "Remap") == {"base_model": [5], "previous_semantic_ids": [5]}
  _train_on_sids(tmp_path, 6, backfill=0)  # a daily model of span 6 is before a refresh at 7
  _run(_refresh_at(tmp_path, 7))
  assert _inputs(store, "Remap") == {"base_model": [6], "previous_semantic_ids": [6]}
