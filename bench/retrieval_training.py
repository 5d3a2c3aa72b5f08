"""TIGER training throughput: the TFX path (RetrievalTrainer's executor and run_fn over the ingestion's
TFRecords) against the same model in plain Keras on the same examples held in memory, in one run.

  .venv/bin/python bench/retrieval_training.py [--output_root outputs] [--epochs 1] [--repeats 2]
      [--retrieval JSON]
  (after the main command)

Both train on the SID refresh's backfill examples over the loop's latest catalog, with the loop's retrieval
settings (--retrieval overrides some), from scratch; figures are examples/s after the first step (which
traces the step function). Target (issue 23): the TFX path within 1.5x of plain Keras.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Dict, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from bench import loop
from components.ranking_trainer import executor as trainer_executor
from components.ranking_trainer.component import executor_properties
from components.retrieval_trainer.component import RetrievalTrainer
from formats import artifacts
from models.ranking import trainer as ranking_trainer
from models.retrieval import data, serving, trainer
from models.retrieval.config import RetrievalConfig
from pipeline import experiments, summary
from pipeline.stages.semantic_ids import INTERACTIONS_SPLIT


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--epochs", type=int, default=1)
  parser.add_argument("--retrieval", default="{}", help="JSON of RetrievalConfig settings over the loop's")
  parser.add_argument("--repeats", type=int, default=2, help="each path this many times, alternately")
  args, loop_config = loop.parse(parser, argv)
  settings = {**loop_config.retrieval, **json.loads(args.retrieval), "warmup_epochs": args.epochs}
  config = RetrievalConfig.from_dict(settings)
  outputs = summary.latest_outputs_at(loop_config.metadata_path, loop_config.pipeline_name)
  store = summary.readonly_store(loop_config.metadata_path)
  [(_, examples)] = experiments.interaction_sequence(store, loop_config.pipeline_name)[:1]
  sids = summary.latest_artifact(outputs, artifacts.SemanticIds, "semantic_ids", "SemanticIdAssigner")
  print(f"TIGER {config.encoder_layers}+{config.decoder_layers} layers, d_model {config.d_model}, encoder input "
        f"{config.encoder_input}, batch {config.batch_size}, {args.epochs} epoch(s); {os.cpu_count()} CPUs")

  tfx_path, plain = [], []
  for _ in range(args.repeats):  # alternately: a noisy machine's drift reaches both alike
    metrics, wall = _tfx_path(examples, sids, settings)
    tfx_path.append(metrics["steady_examples_per_second"])
    print(f"TFX path (RetrievalTrainer):  {tfx_path[-1]:>8,.0f} examples/s after the first step "
          f"({metrics['train_examples']:,} examples x {metrics['epochs']}, {metrics['train_seconds']:.1f}s; "
          f"{wall:.1f}s for the whole Do() with export)")
    plain.append(_plain_keras(examples, sids, config, args.epochs, metrics["train_examples"]))
    print(f"plain Keras, in-memory data:  {plain[-1]:>8,.0f} examples/s")
  ratio = float(np.median(tfx_path)) / float(np.median(plain))
  print(f"TFX path / plain Keras, medians of {args.repeats}: {ratio:.2f}x (target: at least {1 / 1.5:.2f}x)")


def _tfx_path(examples, sids, settings: Dict[str, Any]) -> Tuple[Dict[str, Any], float]:
  """RetrievalTrainer's executor Do() from scratch: its metrics.json and the wall time of the whole Do()."""
  with tempfile.TemporaryDirectory() as tmp:
    output_dict = {"model": [standard_artifacts.Model()], "model_run": [standard_artifacts.ModelRun()]}
    for key, [artifact] in output_dict.items():
      artifact.uri = os.path.join(tmp, key)
    component = RetrievalTrainer(examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
                                 semantic_ids=tfx.dsl.Channel(type=artifacts.SemanticIds),
                                 train_splits=[INTERACTIONS_SPLIT], eval_splits=[], retrieval_config=settings)
    start = time.perf_counter()
    trainer_executor.Executor().Do({"examples": [examples], "semantic_ids": [sids]}, output_dict,
                                   executor_properties(component))
    wall = time.perf_counter() - start
    with open(os.path.join(output_dict["model_run"][0].uri, ranking_trainer.METRICS_FILE)) as f:
      return json.load(f), wall


def _plain_keras(examples, sids, config: RetrievalConfig, epochs: int, count: int) -> float:
  """The same model fit on the same examples, tokenized and held in memory first: examples/s."""
  catalog = trainer.load_catalog({"semantic_ids_uri": sids.uri,
                                  "codebook_size": sids.get_int_custom_property("codebook_size")})
  layout = catalog.layout(config.suffix_size, config.user_buckets)
  model = trainer.build(config, layout)
  retriever = serving.Retriever(model.encode, model.decode_next, catalog, layout, config)
  files = [os.path.join(examples.uri, f"Split-{INTERACTIONS_SPLIT}", "*")]
  batches = data.dataset(files, retriever.item_tokens, layout, config, shuffle_seed=config.seed).cache()
  for _ in batches:  # fill the cache: time training, not parsing
    pass
  model.fit(batches.take(2), verbose=0)  # trace: steady-state throughput, as the TFX path's figure
  start = time.perf_counter()
  model.fit(batches, epochs=epochs, verbose=0)
  return count * epochs / (time.perf_counter() - start)


if __name__ == "__main__":
  loop.run(main)
