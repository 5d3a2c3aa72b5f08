"""What the latest pipeline run produced, read back from ML Metadata and the artifacts' reports."""

import json
import os
import sys
from typing import Dict, List, Tuple

import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2

from formats import artifacts
from formats.errors import InputDataError
from models.ranking import trainer as ranking_trainer

_OUTPUT = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_DONE = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
# The nodes that write ItemEmbeddings: the SID refresh's (one or the other) and the daily runs'.
EMBEDDING_NODES = ("ContentEmbedder", "EmbeddingImporter", "NewItemEmbedder")


def latest_run_outputs(store: metadata_store.MetadataStore, pipeline_name: str
                       ) -> Dict[str, Dict[str, metadata_store_pb2.Artifact]]:
  """{node id: {output key: artifact}} of the pipeline's most recent run, cached nodes included."""
  runs = store.get_contexts_by_type("pipeline_run")
  if not runs:
    return {}
  run = max(runs, key=lambda c: c.create_time_since_epoch)
  in_run = {e.id for e in store.get_executions_by_context(run.id)}
  node_of = {}
  for node in store.get_contexts_by_type("node"):
    if node.name.startswith(pipeline_name + "."):
      for execution in store.get_executions_by_context(node.id):
        if execution.id in in_run:
          node_of[execution.id] = node.name[len(pipeline_name) + 1:]
  return _outputs_by_node(store, node_of)


def _outputs_by_node(store: metadata_store.MetadataStore, node_of: Dict[int, str]
                     ) -> Dict[str, Dict[str, metadata_store_pb2.Artifact]]:
  """{node id: {output key: artifact}} of the executions in `node_of` (execution id -> node id)."""
  events = [e for e in store.get_events_by_execution_ids(list(node_of)) if e.type in _OUTPUT]
  artifacts = {a.id: a for a in store.get_artifacts_by_id(list({e.artifact_id for e in events}))}
  outputs: Dict[str, Dict[str, metadata_store_pb2.Artifact]] = {}
  for event in events:
    key = event.path.steps[0].key
    outputs.setdefault(node_of[event.execution_id], {})[key] = artifacts[event.artifact_id]
  return outputs


def anomaly_lines(uri: str) -> List[str]:
  """"split: feature: description" for each anomaly ExampleValidator found, per split."""
  lines = []
  for split_dir in sorted(tf.io.gfile.listdir(uri)):
    path = os.path.join(uri, split_dir.rstrip("/"), "SchemaDiff.pb")
    if not tf.io.gfile.exists(path):
      continue
    anomalies = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())
    for feature, info in anomalies.anomaly_info.items():
      lines.append(f"{split_dir.rstrip('/')[len('Split-'):]}: {feature}: {info.short_description}")
  return lines


def print_summary(store: metadata_store.MetadataStore, pipeline_name: str, stream=sys.stdout) -> None:
  """What was produced, where the reports are, and the headline figures."""
  outputs = latest_run_outputs(store, pipeline_name)
  say = lambda text="": print(text, file=stream)
  say("\nProduced (ML Metadata artifacts of this run):")
  for node in sorted(outputs):
    for key, artifact in sorted(outputs[node].items()):
      say(f"  {node + '.' + key:<38} {artifact.uri}")
  report = outputs.get("SpanExampleGen", {}).get("report")
  if report:
    path = os.path.join(report.uri, artifacts.INGESTION_REPORT_FILE)
    with tf.io.gfile.GFile(path) as f:
      ingestion = json.load(f)
    window = (f"before {ingestion['end_date']} (backfill)" if ingestion["end_date"] else
              f"in {ingestion['span_period']} span {ingestion['span']} ({ingestion['span_start']})")
    say(f"\nIngestion report: {path}")
    say(f"  interactions {ingestion['interactions']['valid']:,} {window}, liked "
        f"{ingestion['interactions']['liked_fraction']:.1%}, users {ingestion['interactions']['users']:,}; "
        f"new items {ingestion['items']['new']:,} ({ingestion['items'].get('never_rated', 0)} never rated); "
        f"bad rows {ingestion['bad_rows']['total']}")
  for node, label in (("ExampleValidator", "interactions"), ("ItemExampleValidator", "items")):
    anomalies = outputs.get(node, {}).get("anomalies")
    if anomalies:
      found = anomaly_lines(anomalies.uri)
      say(f"Anomalies in {label} against schemas/: {len(found)} ({anomalies.uri})")
      for line in found[:10]:
        say(f"  {line}")
  embeddings = outputs.get("ContentEmbedder", outputs.get("EmbeddingImporter", {})).get("embeddings")
  if embeddings:
    props = embeddings.custom_properties
    say(f"Item embeddings: {props['count'].int_value:,} x {props['dim'].int_value} "
        f"from {props['source'].string_value} ({embeddings.uri})")
  for node in ("SemanticIdAssigner", "SemanticIdAssignerV0"):
    sids = outputs.get(node, {}).get("semantic_ids")
    trainer = outputs.get(node.replace("SemanticIdAssigner", "RQVAETrainer"), {}).get("model")
    if sids and trainer:
      props, model = sids.custom_properties, trainer.custom_properties
      say(f"Semantic IDs {model['version'].string_value} ({props['num_levels'].int_value} x "
          f"{props['codebook_size'].int_value}, trained on {model['train_items'].int_value:,} items): "
          f"{props['items'].int_value:,} items, unique before suffix "
          f"{props['unique_ratio_before_suffix'].double_value:.2%}, "
          f"{props['items_with_nonzero_suffix'].int_value} needed a suffix, utilisation "
          f"{model['utilisation'].string_value}, perplexity {model['perplexity'].string_value}")
  quality = outputs.get("SidQualityReport", {}).get("report")
  if quality:
    props = quality.custom_properties
    say(f"SID quality report: {os.path.join(quality.uri, 'report.html')}")
    for prefix, name in (("rqvae", "RQ-VAE"), ("faiss", "FAISS RQ"), ("rq_kmeans", "RQ-KMeans")):
      if f"{prefix}_mse" in props:
        say(f"  {name:<10} reconstruction MSE {props[prefix + '_mse'].double_value:.6f}, "
            f"unique SIDs {props[prefix + '_unique_ratio'].double_value:.2%}")
  adaptation = outputs.get("SidVocabBuilder", {}).get("report")
  if adaptation:
    path = os.path.join(adaptation.uri, artifacts.SID_VOCABULARY_REPORT_FILE)
    with tf.io.gfile.GFile(path) as f:
      report = json.load(f)
    say(f"SID adaptations ({report['impressions']:,} impressions in {', '.join(report['train_splits'])}; "
        f"head = top {report['head_items']:,} items): {path}")
    for row in report["adaptations"]:
      name = row["adaptation"] + (f" @{row['table_budget']}" if row.get("table_budget") else "")
      if "refused" in row:
        say(f"  {name:<20} refused: {row['refused']}")
        continue
      shared = (f", keys sharing a row {row['keys_sharing_a_row']:.1%}"
                if "keys_sharing_a_row" in row else "")
      say(f"  {name:<20} rows {row['table_rows']:>7,} (used {row['rows_used']:>6,}), lookups per item "
          f"head {row['lookups_head']:.2f} / rest {row['lookups_rest'] or 0:.2f}{shared}")
  trainer = outputs.get("RankingTrainer", {})
  if trainer:
    with tf.io.gfile.GFile(os.path.join(trainer["model_run"].uri, ranking_trainer.METRICS_FILE)) as f:
      step = json.load(f)
    scored = step["eval"]
    aucs = ", ".join(f"{name} {_auc(scored.get(name, {}))}" for name in ("overall", "cold_start", "long_tail"))
    say(f"Ranking model ({step['config']['representation']}): trained on {step['train_examples']:,} interactions "
        f"in {step['train_seconds']:.1f}s" + ("" if not scored.get("overall") else
        f"; before that, scored them at AUC {aucs}") + f" ({trainer['model'].uri})")
  retrieval = outputs.get("RetrievalTrainer", {})
  if retrieval:
    with tf.io.gfile.GFile(os.path.join(retrieval["model_run"].uri, ranking_trainer.METRICS_FILE)) as f:
      step = json.load(f)
    config = step["config"]
    say(f"Retrieval model (TIGER, {config['encoder_layers']}+{config['decoder_layers']} layers, d_model "
        f"{config['d_model']}): trained on {step['train_examples']:,} interactions x {step['epochs']} epochs in "
        f"{step['train_seconds']:.1f}s ({step['train_examples_per_second'] or 0:,.0f} examples/s), over "
        f"{step['catalog_items']:,} items ({retrieval['model'].uri})")
  pushed = outputs.get("Pusher", {}).get("pushed_model")
  if pushed:
    props = pushed.custom_properties
    if "pushed" in props and props["pushed"].int_value:
      say(f"Pushed for serving: {props['pushed_destination'].string_value}")
    else:
      say("Not pushed: the evaluated model was not blessed")


def _auc(slice_metrics) -> str:
  return "n/a" if slice_metrics.get("auc") is None else f"{slice_metrics['auc']:.3f}"


def latest_node_outputs(store: metadata_store.MetadataStore, pipeline_name: str
                        ) -> Dict[str, Dict[str, metadata_store_pb2.Artifact]]:
  """{node id: {output key: artifact}} of each node's most recent successful execution, in any run: the
  SID refresh's artifacts beside the latest daily run's (benches, experiments)."""
  node_of = {}
  for node in store.get_contexts_by_type("node"):
    if not node.name.startswith(pipeline_name + "."):
      continue
    executions = [e for e in store.get_executions_by_context(node.id) if e.last_known_state in _DONE]
    if executions:
      latest = max(executions, key=lambda e: (e.create_time_since_epoch, e.id))
      node_of[latest.id] = node.name[len(pipeline_name) + 1:]
  return _outputs_by_node(store, node_of)


def latest_outputs_at(metadata_path: str, pipeline_name: str
                      ) -> Dict[str, Dict[str, metadata_store_pb2.Artifact]]:
  """latest_node_outputs of the SQLite ML Metadata store at `metadata_path` (benches, experiments)."""
  return latest_node_outputs(readonly_store(metadata_path), pipeline_name)


def readonly_store(metadata_path: str) -> metadata_store.MetadataStore:
  """The SQLite ML Metadata store at `metadata_path`, read-only (benches, experiments)."""
  if not tf.io.gfile.exists(metadata_path):
    raise InputDataError(f"{metadata_path} not found: run the main command (pipeline.local_runner) first")
  return metadata_store.MetadataStore(
      metadata_store_pb2.ConnectionConfig(sqlite=metadata_store_pb2.SqliteMetadataSourceConfig(
          filename_uri=metadata_path, connection_mode=metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)))


def output_history(store: metadata_store.MetadataStore, pipeline_name: str, node_id: str, key: str
                   ) -> List[Tuple[metadata_store_pb2.Artifact, metadata_store_pb2.Execution]]:
  """Every artifact that successful executions of node `node_id` output under `key`, in any run, oldest
  first, each with the execution that produced it (not a later one that took it from the cache)."""
  node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
  executions = {e.id: e for e in (store.get_executions_by_context(node.id) if node else [])
                if e.last_known_state in _DONE}
  producer: Dict[int, metadata_store_pb2.Execution] = {}
  for event in sorted(store.get_events_by_execution_ids(list(executions)), key=lambda e: e.execution_id):
    if event.type in _OUTPUT and event.path.steps[0].key == key:
      producer.setdefault(event.artifact_id, executions[event.execution_id])
  return [(a, producer[a.id]) for a in sorted(store.get_artifacts_by_id(list(producer)), key=lambda a: a.id)]


def latest_artifact(outputs: Dict[str, Dict[str, metadata_store_pb2.Artifact]], artifact_type, key: str,
                    *node_ids: str):
  """The newest `key` output of the nodes `node_ids` in `outputs` (latest_node_outputs), as an
  `artifact_type` (ML Metadata ids grow with time: e.g. the latest ItemEmbeddings of EMBEDDING_NODES);
  InputDataError naming the nodes that ran when none of these did."""
  found = [outputs[node][key] for node in node_ids if key in outputs.get(node, {})]
  if not found:
    raise InputDataError(f"no {' or '.join(f'{node}.{key}' for node in node_ids)} in ML Metadata (nodes "
                         f"that ran: {', '.join(sorted(outputs)) or 'none'}): run the main command first")
  return as_artifact(max(found, key=lambda a: a.id), artifact_type)


def as_artifact(raw: metadata_store_pb2.Artifact, artifact_type):
  """An ML Metadata artifact as an instance of its TFX artifact class."""
  artifact = artifact_type()
  artifact.set_mlmd_artifact(raw)
  return artifact
