"""One daily run: the daily pipeline for one span, as a scheduler starts it (cron on Kubeflow, or here).

  python -m pipeline.daily_run --output_root outputs --span 17590     (or --date 2018-02-28)

Reads the loop's settings from <output_root>/config.json (written by the main command), checks that the
span's input exists and that a SID refresh has run, runs the pipeline, and writes the run's figures to
<output_root>/runs/span-<N>.json last: its presence means the span is done (pipeline/replay.py skips it).
"""

import argparse
import itertools
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from tfx.types import standard_artifacts

from formats import artifacts, movielens, spans
from formats.errors import InputDataError
from models.ranking import trainer as ranking_trainer
from pipeline import memory, partition, pipeline
from pipeline import runs, summary, tfma_results
from pipeline.configs import PipelineConfig


def record_path(output_root: str, span: int) -> str:
  return runs.record_path(output_root, f"span-{span}")


def input_spans(input_base: str) -> List[int]:
  """The spans the partitioned input holds, in order."""
  found = []
  for name in tf.io.gfile.listdir(input_base) if tf.io.gfile.isdir(input_base) else []:
    name = name.rstrip("/")
    if name.startswith(partition.SPAN_PREFIX) and name[len(partition.SPAN_PREFIX):].isdigit():
      found.append(int(name[len(partition.SPAN_PREFIX):]))
  return sorted(found)


def check_span(config: PipelineConfig, span: int) -> None:
  """A clear refusal, naming the span and what exists, for a span the loop cannot run."""
  first = spans.span_of_date(config.start_date, config.span_period)
  date = spans.span_start(span, config.span_period).isoformat()
  existing = input_spans(config.input_base)
  if span < first:
    raise InputDataError(f"span {span} ({date}) is before the loop's first span {first} ({config.start_date}): "
                         f"it belongs to the backfill the SID refresh learned from")
  if span not in existing:
    have = (f"spans {existing[0]} ({spans.span_start(existing[0], config.span_period)}) .. {existing[-1]} "
            f"({spans.span_start(existing[-1], config.span_period)})" if existing else "no span")
    raise InputDataError(f"no input for {config.span_period} span {span} ({date}) under {config.input_base}: "
                         f"it holds {have}")


def _json(path: str) -> Dict[str, Any]:
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def run_record(config: PipelineConfig, span: int, seconds: float, components: Dict[str, Dict]) -> Dict[str, Any]:
  """The figures of the span's run, from its artifacts in ML Metadata."""
  store = runs.store(config)
  outputs = summary.latest_run_outputs(store, config.pipeline_name)
  report = _json(os.path.join(outputs["SpanExampleGen"]["report"].uri, "ingestion_report.json"))
  record = {"span": span, "date": spans.span_start(span, config.span_period).isoformat(),
            "seconds": round(seconds, 1), "components": components,
            "interactions": report["interactions"]["valid"], "new_items": report["items"]["new"],
            "bad_rows": report["bad_rows"]["total"]}
  record.update(_trainer_step(outputs, "RankingTrainer", ""))
  evaluation = outputs.get("Evaluator", {}).get("evaluation")
  if evaluation:
    blessing = outputs["Evaluator"]["blessing"].custom_properties
    [model] = store.get_artifacts_by_id([blessing["current_model_id"].int_value])
    record["evaluated_model"] = {"id": model.id, "uri": model.uri,
                                 "span": spans.latest_span([summary.as_artifact(model, standard_artifacts.Model)])}
    record["tfma"] = tfma_results.sliced_auc(evaluation.uri)
    record["blessed"] = bool(blessing["blessed"].int_value)
  record.update(_pushed_version(outputs, "Pusher", "pushed_version"))
  record.update(_retrieval_record(outputs))
  return record


def _trainer_step(outputs: Dict[str, Dict], node: str, prefix: str) -> Dict[str, Any]:
  """The examples a trainer trained on and its own scores of the span before training (metrics.json)."""
  trainer = outputs.get(node, {})
  if not trainer:
    return {}
  step = _json(os.path.join(trainer["model_run"].uri, ranking_trainer.METRICS_FILE))
  return {f"{prefix}trained_examples": step["train_examples"], f"{prefix}trainer_scored": step["eval"]}


def _pushed_version(outputs: Dict[str, Dict], node: str, key: str) -> Dict[str, str]:
  """{key: the version `node` pushed}, or {} when it pushed nothing."""
  pushed = outputs.get(node, {}).get("pushed_model")
  if pushed is None or not pushed.custom_properties["pushed"].int_value:
    return {}
  version = pushed.custom_properties["pushed_version"]
  return {key: version.string_value or str(version.int_value)}


def _retrieval_record(outputs: Dict[str, Dict]) -> Dict[str, Any]:
  """The retrieval side of a run: the trainer's step, the evaluation of the latest model against the blessed
  one (full-catalog Recall/NDCG), and what was pushed (the retrieval model, the two-stage model)."""
  record = _trainer_step(outputs, "RetrievalTrainer", "retrieval_")
  evaluation = outputs.get("RetrievalEvaluator", {}).get("evaluation")
  if evaluation:
    report = _json(os.path.join(evaluation.uri, artifacts.RETRIEVAL_METRICS_FILE))
    record["retrieval"] = {key: report[key] for key in ("candidate", "baseline", "blessed", "reasons", "served")}
  record.update(_pushed_version(outputs, "RetrievalPusher", "retrieval_pushed_version"))
  record.update(_pushed_version(outputs, "RecommenderPusher", "recommend_pushed_version"))
  return record


def has_interactions(config: PipelineConfig, span: int) -> bool:
  """Whether the span's ratings.csv holds a row after its header."""
  with tf.io.gfile.GFile(os.path.join(config.input_base, partition.span_directory(span),
                                      movielens.RATINGS_FILE)) as f:
    return any(line.strip() for line in itertools.islice(f, 1, None))


def run_span(config: PipelineConfig, span: int) -> Optional[Dict[str, Any]]:
  """Runs span `span` (its finished components come from the cache) and records it; None if refused.
  A span without interactions is recorded as skipped: nothing to score or train on, and the next span
  continues from the latest state and model before it."""
  check_span(config, span)
  start = time.monotonic()
  if has_interactions(config, span):
    if not runs.store(config).get_artifacts_by_type(artifacts.SidVocabulary.TYPE_NAME):
      raise InputDataError(f"no SID refresh in {config.metadata_path}: run the main command first")
    components = runs.run_with_engine(
        config, lambda run_config, connection: pipeline.create_daily_pipeline(run_config, span, connection))
    if components is None:
      return None
    record = run_record(config, span, time.monotonic() - start, components)
  else:
    print(f"span {span}: no interactions, skipped (the next span continues from the one before)")
    record = {"span": span, "date": spans.span_start(span, config.span_period).isoformat(), "seconds": 0.0,
              "components": {}, "interactions": 0, "new_items": 0, "bad_rows": 0, "skipped": "no interactions"}
  record["peak_rss_mb"] = memory.peak_rss_mb()
  runs.write_record(record_path(config.output_root, span), record)
  return record


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output_root", required=True)
  when = parser.add_mutually_exclusive_group(required=True)
  when.add_argument("--span", type=int, help="span number (formats/spans.py)")
  when.add_argument("--date", help="a date inside the span (YYYY-MM-DD)")
  args = parser.parse_args(argv)
  try:
    config = runs.load_config(args.output_root)
    span = args.span if args.span is not None else spans.span_of_date(args.date, config.span_period)
    with runs.holding(args.output_root, f"the daily run of span {span}"):
      record = run_span(config, span)
  except (InputDataError, ValueError) as error:
    print(f"Refused: {error}", file=sys.stderr)
    return 2
  if record is None:
    return 2
  print(json.dumps({k: v for k, v in record.items() if k != "components"}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
