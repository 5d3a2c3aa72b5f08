"""Ranking training throughput: the TFX Trainer path (RankingTrainer's executor and run_fn, reading
the examples' files, TPUEmbedding tables with the embedding optimizer) vs a plain Keras model with
ordinary tf.keras.layers.Embedding tables of the same size, same tower and same data, in one run.

  .venv/bin/python bench/ranking.py [--output_root outputs] [--split interactions] [--ranking JSON]
      [--compare JSON [--repeats 3] [--step_rounds 20]]
  (after the main command)

It trains on the loop's latest examples (the latest daily span's, or the SID refresh's backfill) over its
latest catalog, with the loop's ranking settings.
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
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from bench import loop
from formats import sid_vocabulary
from components.ranking_trainer import executor as trainer_executor
from components.ranking_trainer.component import RankingTrainer, executor_properties
from models.ranking import model as ranking
from models.ranking import trainer
from models.ranking.config import RankingConfig
from models.ranking.items import PieceItems, Vectors
from pipeline import experiments, summary

# RankingTrainer's inputs: (output key, the nodes that write it); the latest such artifact is taken.
SOURCES = {"examples": ("examples", "SpanExampleGen"), "semantic_ids": ("semantic_ids", "SemanticIdAssigner"),
           "vocabulary": ("vocabulary", "SidVocabBuilder"), "embeddings": ("embeddings", *summary.EMBEDDING_NODES),
           "sid_encoder": ("model", "RQVAETrainer"), "feature_state": ("state", "SpanExampleGen")}
_INPUT_TYPES = {key: channel.type for key, channel in RankingTrainer.SPEC_CLASS.INPUTS.items()}


class PlainKerasItems(tf.keras.layers.Layer):
  """PieceItems' pieces, summed from a tf.keras.layers.Embedding table that Adam updates with the tower: in a
  RankingModel, the same model (dropout, counters, SID-cluster rates, cross layers, towers) in plain Keras."""

  CONTENT_INPUT = PieceItems.CONTENT_INPUT

  def __init__(self, reference: PieceItems, dim: int):
    super().__init__()
    self.pieces = reference.pieces
    self.table = tf.keras.layers.Embedding(reference.tokenizer.num_rows, dim)

  def _sum(self, pieces: tf.RaggedTensor) -> tf.Tensor:
    return tf.reduce_sum(self.table(pieces), axis=1)

  def _per_item(self, ids: tf.Tensor):
    pieces = self.pieces(ids)
    return self._sum(pieces), pieces.row_lengths() > 0

  def call(self, candidate, current, history=None, candidate_codes=None) -> Vectors:
    return Vectors.of(self._sum(self.pieces(candidate, candidate_codes)), self._sum(self.pieces(current)), history,
                      self._per_item)


def plain_keras_twin(reference: ranking.RankingModel) -> ranking.RankingModel:
  config = reference.config
  if config.user_table_rows or not isinstance(reference.items, PieceItems):
    raise ValueError("the plain Keras twin covers piece representations without user ids")
  twin = ranking.RankingModel(config, PlainKerasItems(reference.items, config.embedding_dim),
                              sid_clusters=reference.sid_clusters, attention=reference.attention, codes=reference.codes)
  twin.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  return twin


def _trainer_path(input_dict, split: str, ranking_config: Dict[str, Any]) -> Tuple[Dict[str, Any], float]:
  """RankingTrainer's executor Do() on the inputs: its metrics.json and the wall time of the whole Do()."""
  with tempfile.TemporaryDirectory() as tmp:
    output_dict = {"model": [standard_artifacts.Model()], "model_run": [standard_artifacts.ModelRun()]}
    for key, [artifact] in output_dict.items():
      artifact.uri = os.path.join(tmp, key)
    component = RankingTrainer(**{key: tfx.dsl.Channel(type=_INPUT_TYPES[key]) for key in input_dict},
                               train_splits=[split], eval_splits=[split], ranking_config=ranking_config)
    start = time.perf_counter()
    trainer_executor.Executor().Do(input_dict, output_dict, executor_properties(component))
    wall = time.perf_counter() - start
    with open(os.path.join(output_dict["model_run"][0].uri, trainer.METRICS_FILE)) as f:
      metrics = json.load(f)
  if metrics["steady_examples_per_second"] is None:
    sys.exit(f"{metrics['train_examples']} examples in split {split!r} fit in one batch, too few to time "
             "past the first step: give --backfill (the SID refresh's examples)")
  return metrics, wall


def _compare(input_dict, split: str, ranking_config: Dict[str, Any], other: Dict[str, Any], repeats: int) -> None:
  """The TFX Trainer path of both settings, alternately `repeats` times each: medians and their ratio (a
  noisy machine's drift reaches both alike)."""
  figures = {"this": [], "other": []}
  for _ in range(repeats):
    for name, settings in (("this", ranking_config), ("other", other)):
      figures[name].append(_trainer_path(input_dict, split, settings)[0]["steady_examples_per_second"])
  this, that = (float(np.median(figures[name])) for name in ("this", "other"))
  print(f"TFX Trainer path, alternately x{repeats}: {RankingConfig.from_dict(ranking_config).name} "
        f"{', '.join(f'{v:,.0f}' for v in figures['this'])} examples/s (median {this:,.0f}); "
        f"{RankingConfig.from_dict(other).name} {', '.join(f'{v:,.0f}' for v in figures['other'])} "
        f"(median {that:,.0f}): the first {that / this:.2f}x slower (target: at most 1.5x)")


def _alternate_steps(settings: Dict[str, Dict[str, Any]], input_dict, catalog, files, rounds: int, steps: int
                     ) -> None:
  """Training steps alone, in memory (no input pipeline, no Trainer): each settings' model trains the same
  `steps` batches in turn, `rounds` times; medians and their ratio. Finer-grained than whole Trainer runs, so
  the drift of a shared machine reaches both arms alike."""
  arms = {}
  for name, values in settings.items():
    config = RankingConfig.from_dict(values)
    model = ranking.build(config, catalog, sid_vocabulary.load_model(input_dict["vocabulary"][0], config.table_rows))
    batches = list(ranking.dataset(files, config.batch_size).take(steps))
    model.fit(tf.data.Dataset.from_tensors(batches[0]).repeat(2), verbose=0)  # builds the optimizers' slots
    step = tf.function(model.train_step, reduce_retracing=True)
    for batch in batches[:2]:
      step(batch)  # traces
    arms[name] = (step, batches, config.batch_size)
  figures = {name: [] for name in arms}
  for _ in range(rounds):
    for name, (step, batches, batch_size) in arms.items():
      start = time.perf_counter()
      for batch in batches:
        logs = step(batch)
      float(logs["loss"])  # waits for the last step
      figures[name].append(len(batches) * batch_size / (time.perf_counter() - start))
  (this, this_figures), (other, other_figures) = figures.items()
  print(f"Training steps alone, alternately {rounds} x {steps} steps: {this} median {np.median(this_figures):,.0f} "
        f"examples/s; {other} {np.median(other_figures):,.0f}: the first "
        f"{np.median(other_figures) / np.median(this_figures):.2f}x slower")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--split", default="interactions")
  parser.add_argument("--backfill", action="store_true",
                      help="train on the SID refresh's backfill (tens of thousands of interactions) instead of the "
                           "latest span, which may hold too few to time")
  parser.add_argument("--ranking", default="{}", help="JSON of RankingConfig settings over the loop's, e.g. the "
                      "former model: '{\"use_counters\": false, \"hidden_units\": [256, 64]}'")
  parser.add_argument("--compare", default="", help="JSON of other RankingConfig settings whose TFX Trainer path "
                      "is timed alternately with these (--repeats times each), e.g. the model issue 12 started from")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--step_rounds", type=int, default=20,
                      help="with --compare, also the training steps alone, alternately this many rounds of 20 steps "
                           "(0: not)")
  args, loop_config = loop.parse(parser, argv)
  ranking_config = {**loop_config.ranking, **json.loads(args.ranking)}
  outputs = summary.latest_outputs_at(loop_config.metadata_path, loop_config.pipeline_name)
  config = RankingConfig.from_dict(ranking_config)
  input_dict = {key: [summary.latest_artifact(outputs, _INPUT_TYPES[key], output_key, *nodes)]
                for key, (output_key, *nodes) in SOURCES.items()}
  if args.backfill:
    store = summary.readonly_store(loop_config.metadata_path)
    [(_, input_dict["examples"][0])] = experiments.interaction_sequence(store, loop_config.pipeline_name)[:1]
  print(f"{config.name}, batch {config.batch_size}, split {args.split}; {os.cpu_count()} CPUs")

  metrics, wall = _trainer_path(input_dict, args.split, ranking_config)
  examples = metrics["train_examples"]
  tfx_path = metrics["steady_examples_per_second"]
  print(f"TFX Trainer path (TPUEmbedding): {tfx_path:,.0f} examples/s after the first step "
        f"({metrics['train_examples_per_second']:,.0f} over the whole fit: {examples:,} examples x "
        f"{metrics['epochs']} epochs, {metrics['train_seconds']:.1f}s; {wall:.1f}s for the whole Do())")
  files = [os.path.join(input_dict["examples"][0].uri, f"Split-{args.split}", "*")]
  catalog = trainer.load_catalog(
      {f"{k}_uri": input_dict[k][0].uri for k in ("semantic_ids", "vocabulary", "embeddings")}, with_content=False)
  if args.compare:
    other = {**loop_config.ranking, **json.loads(args.compare)}
    _compare(input_dict, args.split, ranking_config, other, args.repeats)
    if args.step_rounds:
      _alternate_steps({config.name: ranking_config, RankingConfig.from_dict(other).name: other}, input_dict, catalog,
                       files, args.step_rounds, steps=20)

  spm_model = sid_vocabulary.load_model(input_dict["vocabulary"][0], config.table_rows)
  for label, model in (("TPUEmbedding model, in-memory data", ranking.build(config, catalog, spm_model)),
                       ("plain Keras Embedding, in-memory data",
                        plain_keras_twin(ranking.build(config, catalog, spm_model)))):
    data = ranking.dataset(files, config.batch_size).cache()
    for _ in data:  # fill the cache: time training, not parsing
      pass
    model.fit(data.take(2), verbose=0)  # trace: steady-state throughput, as the Trainer's figure below
    start = time.perf_counter()
    model.fit(data, epochs=metrics["epochs"], verbose=0)
    seconds = time.perf_counter() - start
    in_memory = examples * metrics["epochs"] / seconds
    print(f"{label:<40} {in_memory:>10,.0f} examples/s ({seconds:.1f}s)")
  print(f"TFX Trainer path / plain Keras: {tfx_path / in_memory:.2f}x "
        f"(target: at least {1 / 1.5:.2f}x)")


if __name__ == "__main__":
  loop.run(main)
