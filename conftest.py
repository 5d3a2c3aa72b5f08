"""Test set-up shared by every test: tf-keras before TensorFlow, and a tiny MovieLens directory."""

import json
import os
import socket
import subprocess
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import datetime
import pathlib

import pytest

# 2018-01-01 00:00:00 UTC, a Monday.
DAY0 = 1514764800
DAY = 86400
# A backfill end after the tiny data's last rating (DAY0 + 2 days).
TINY_END_DATE = datetime.datetime.fromtimestamp(DAY0 + 4 * DAY, datetime.timezone.utc).date().isoformat()

TINY_MOVIES = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation
2,"Heat, The (1995)",Action|Crime
3,No Genres Movie,(no genres listed)
4,Never Rated (2000),Drama
"""
TINY_RATINGS = f"""userId,movieId,rating,timestamp
1,1,4.0,{DAY0}
1,2,3.0,{DAY0 + 1}
1,3,5.0,{DAY0 + DAY}
2,2,4.5,{DAY0 + DAY + 5}
2,1,2.0,{DAY0 + 2 * DAY}
"""
TINY_TAGS = f"""userId,movieId,tag,timestamp
1,1,Pixar,{DAY0}
2,1,pixar,{DAY0 + 3}
2,1,toys,{DAY0 + 4}
"""


def write_movielens(path: pathlib.Path, movies: str = TINY_MOVIES, ratings: str = TINY_RATINGS,
                    tags: str = TINY_TAGS) -> str:
  path.mkdir(parents=True, exist_ok=True)
  for name, text in (("movies.csv", movies), ("ratings.csv", ratings), ("tags.csv", tags)):
    if text is not None:
      (path / name).write_text(text)
  return str(path)


@pytest.fixture
def tiny_movielens(tmp_path: pathlib.Path) -> str:
  return write_movielens(tmp_path / "movielens")


def run_span_example_gen(input_base: str, out_dir: pathlib.Path, span: int = None, previous=None,
                         end_date: str = None, **props):
  """Resolves the run as TFX's FileBasedDriver does, then calls SpanExampleGen's Do() on fresh artifacts:
  span `span` (or the latest) of a partitioned input, or its backfill with `end_date`. Returns
  ({output key: artifact}, report dict)."""
  import json
  from tfx.components.example_gen import driver
  from tfx.proto import range_config_pb2
  from components.span_example_gen import component, executor
  gen = component.SpanExampleGen(
      input_base=input_base, span_period=props.pop("span_period", "day"),
      span_pattern=component.BACKFILL_PATTERN if end_date else "span-{SPAN}", end_date=end_date,
      range_config=range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
          start_span_number=span, end_span_number=span)) if span is not None else None,
      max_bad_row_fraction=props.pop("max_bad_row_fraction", 1.0), **props)
  exec_properties = driver.FileBasedDriver(None).resolve_exec_properties(dict(gen.exec_properties), None, None)
  outputs = {key: [channel.type()] for key, channel in gen.outputs.items()}
  for key, [artifact] in outputs.items():
    artifact.uri = str(out_dir / key)
    os.makedirs(artifact.uri)
  executor.Executor(beam_context()).Do({"previous_state": [previous] if previous else []}, outputs,
                                       exec_properties)
  with open(os.path.join(outputs["report"][0].uri, executor.REPORT_FILE)) as f:
    report = json.load(f)
  return {key: artifact for key, [artifact] in outputs.items()}, report


def tiny_items(tmp: pathlib.Path):
  """The item corpus (Examples, split 'items') of the tiny MovieLens data, ingested as a backfill."""
  write_movielens(tmp / "ml" / "backfill")
  outputs, _ = run_span_example_gen(str(tmp / "ml"), tmp / "ingested", end_date=TINY_END_DATE)
  return outputs["items"]


def beam_context():
  """Executor context with the pipeline's local Beam arguments (no Prism download, no packaging)."""
  from tfx.dsl.components.base import base_beam_executor
  from pipeline import configs
  return base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(configs.BEAM_PIPELINE_ARGS))


def file_contents(path: str, root: str):
  """A file's records or lines where their order is the runner's (TFRecord shards, a Beam-written
  .jsonl), a SentencePiece model's pieces (it also records its temporary input file's path), or
  else its bytes; paths under `root` as '<root>'."""
  import tensorflow as tf
  from models.sid_adaptation import spm
  if path.endswith(".gz"):
    records = tf.data.TFRecordDataset([path], compression_type="GZIP").as_numpy_iterator()
    return [repr(r) for r in records]
  with open(path, "rb") as f:
    content = f.read()
  if path.endswith(".model"):
    model = spm.processor(content)
    return [repr([(model.id_to_piece(i), model.get_score(i))
                  for i in range(model.get_piece_size())])]
  parts = content.splitlines() if path.endswith(".jsonl") else [content]
  return [repr(part).replace(root, "<root>") for part in parts]


def artifact_contents(root: str, artifacts, properties: bool = True):
  """{'<i> <file>': sorted contents}: every file of every artifact (an output's shards merged), and
  every artifact's properties unless `properties` is False (MLMD artifacts carry ids and times)."""
  import re
  found = {}
  for i, artifact in enumerate(artifacts):
    if properties:
      found[f"{i} properties"] = [str(artifact.mlmd_artifact).replace(root, "<root>")]
    for folder, _, files in os.walk(artifact.uri):
      for name in files:
        path = os.path.join(folder, name)
        output = re.sub(r"-\d{5}-of-\d{5}", "", os.path.relpath(path, artifact.uri))
        found.setdefault(f"{i} {output}", []).extend(file_contents(path, root))
  return {name: sorted(contents) for name, contents in found.items()}


def _gzip_records(path: str, records) -> None:
  import tensorflow as tf
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
    for record in records:
      writer.write(record)


def example(**features):
  """A tf.Example from int, float, str or list-of-int values."""
  import tensorflow as tf
  def feature(value):
    if isinstance(value, (list, tuple)):
      return tf.train.Feature(int64_list=tf.train.Int64List(value=value))
    if isinstance(value, int):
      return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    if isinstance(value, float):
      return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
  return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))


def examples_artifact(path: pathlib.Path, splits):
  """An Examples artifact with one GZIP file per split: {split: [feature dicts]}."""
  from tfx.types import artifact_utils, standard_artifacts
  artifact = standard_artifacts.Examples()
  artifact.uri = str(path)
  artifact.split_names = artifact_utils.encode_split_names(list(splits))
  for split, rows in splits.items():
    _gzip_records(os.path.join(artifact.uri, f"Split-{split}", "data.gz"),
                  [example(**row).SerializeToString() for row in rows])
  return artifact


def semantic_ids_artifact(path: pathlib.Path, codes, codebook_size: int, num_levels: int = 0, suffixes=None):
  """A SemanticIds artifact for items 1..len(codes), with `suffixes` (default: all 0); num_levels (default:
  the codes' length) is what its properties claim."""
  from formats import artifacts, semantic_ids
  artifact = artifacts.SemanticIds()
  artifact.uri = str(path)
  _gzip_records(os.path.join(artifact.uri, f"{semantic_ids.FILE_PREFIX}-0{semantic_ids.FILE_SUFFIX}"),
                [semantic_ids.to_example(i, row, 0 if suffixes is None else int(suffixes[i - 1]))
                 for i, row in enumerate(codes, start=1)])
  artifact.set_int_custom_property("num_levels", num_levels or len(codes[0]))
  artifact.set_int_custom_property("codebook_size", codebook_size)
  return artifact


def embeddings_artifact(path: pathlib.Path, vectors):
  """An ItemEmbeddings artifact for items 1..len(vectors)."""
  from formats import artifacts, item_embeddings
  artifact = artifacts.ItemEmbeddings()
  artifact.uri = str(path)
  _gzip_records(os.path.join(artifact.uri, f"{item_embeddings.FILE_PREFIX}-0{item_embeddings.FILE_SUFFIX}"),
                [item_embeddings.to_example(i, v) for i, v in enumerate(vectors, start=1)])
  item_embeddings.set_properties(artifact, dim=vectors.shape[1], count=len(vectors), source="test")
  return artifact


def rqvae_artifact(path: pathlib.Path, vectors, num_levels: int, codebook_size: int):
  """A frozen RQ-VAE trained briefly on `vectors`: (RQVAEModel artifact with the SavedModel at its
  serving path, the in-memory model)."""
  from formats import artifacts
  from models.rqvae import model as rqvae
  from models.rqvae import saved_model
  from tfx.utils import path_utils
  config = rqvae.RQVAEConfig(input_dim=vectors.shape[1], hidden_dim=16, decoder_hidden_dim=16, latent_dim=4,
                             num_levels=num_levels, codebook_size=codebook_size, batch_size=64,
                             pretrain_epochs=1, epochs=2, refine_epochs=1, kmeans_iterations=3)
  model = rqvae.RQVAE(config)
  rqvae.train(model, vectors, log=lambda _: None)
  artifact = artifacts.RQVAEModel()
  artifact.uri = str(path)
  saved_model.export(model, path_utils.serving_model_path(artifact.uri))
  return artifact, model


SMALL_RANKER = dict(embedding_dim=4, hidden_units=(8,))


def export_ranking_model(export_dir: str, catalog, sid_encoder, representation: str = "prefix_ngram"):
  """A small ranking model over `catalog`, fit on three examples and exported with its signatures."""
  import tensorflow as tf
  from formats.feature_state import CounterSnapshot
  from models.ranking import model as ranking
  from models.ranking import signatures
  from models.ranking.config import RankingConfig
  model = ranking.build(RankingConfig(representation=representation, table_rows=64, **SMALL_RANKER), catalog)
  history = tf.ragged.constant([[], [1], [1, 2]], dtype=tf.int64)
  batch = {"item_id": tf.constant([1, 2, 3]), "current_item": tf.constant([0, 1, 2]), "history": history,
           "history_liked": history.with_flat_values(tf.constant([1, 0, 1], tf.int64)),
           "history_age_days": history.with_flat_values(tf.constant([3, 9, 0], tf.int64)),
           "liked": tf.constant([1, 0, 1])}
  model.fit(tf.data.Dataset.from_tensors(batch).repeat(3), verbose=0)
  model.count({name: batch[name].numpy() for name in ("item_id", "liked")})  # SID-cluster counts, for SID arms
  signatures.export(model, export_dir, catalog.item_ids[:4], sid_encoder, counters=CounterSnapshot.empty())
  return model


TWO_STAGE_ITEMS = 10  # the ranker's catalog; the retrieval catalog has one more item, new to the ranker


@pytest.fixture(scope="session")
def two_stage_sources(tmp_path_factory):
  """A small ranking SavedModel over items 1..10 and an untrained TIGER SavedModel over the same items, and
  the SID catalog of items 1..11 with their content vectors: (ranking_dir, retrieval_dir, catalog, vectors).
  Built once per test session (tests only read them)."""
  root = tmp_path_factory.mktemp("two_stage_sources")
  import numpy as np
  import tensorflow as tf
  from tfx.utils import path_utils
  from models.ranking.catalog import Catalog
  from models.retrieval import serving as retrieval
  from models.retrieval.config import RetrievalConfig
  from models.retrieval.model import TigerModel
  levels, codebook, n = 2, 4, TWO_STAGE_ITEMS
  vectors = np.random.default_rng(0).normal(size=(n + 1, 8)).astype(np.float32)
  artifact, rqvae = rqvae_artifact(root / "rqvae", vectors[:n], levels, codebook)
  codes = rqvae.encode(vectors).numpy()
  ranking_dir, retrieval_dir = str(root / "ranking"), str(root / "retrieval")
  export_ranking_model(ranking_dir, Catalog(np.arange(1, n + 1), codes[:n], codebook, vectors[:n]),
                       tf.saved_model.load(path_utils.serving_model_path(artifact.uri)))
  catalog = sid_catalog(codes, codebook)
  config = RetrievalConfig(encoder_layers=1, decoder_layers=1, heads=2, head_dim=8, d_model=16, mlp_dim=32,
                           user_buckets=10, history_length=4, suffix_size=8, beam_width=4, prefix_rows=64)
  retrieval.export(TigerModel(config, catalog.layout(config.suffix_size, config.user_buckets)),
                   sid_catalog(codes[:n], codebook), retrieval_dir, trained_items=np.arange(1, n + 1))
  return ranking_dir, retrieval_dir, catalog, vectors


def sid_catalog(codes, codebook_size: int):
  """A SidCatalog of items 1..len(codes), collisions numbered in item-id order."""
  import numpy as np
  from formats import semantic_ids
  from models.retrieval.sid_tokens import SidCatalog
  suffixes = np.zeros(len(codes), np.int64)
  _, inverse = np.unique(codes, axis=0, return_inverse=True)
  for group in range(inverse.max() + 1):
    rows = np.flatnonzero(inverse.ravel() == group).tolist()
    suffixes[rows] = [suffix for _, suffix in semantic_ids.disambiguate(rows)]
  return SidCatalog(np.arange(1, len(codes) + 1), codes, suffixes, codebook_size)


_TRAINER_WORKER = """
import json, sys
from tfx.types import artifact_utils
from components.ranking_trainer import executor
spec = json.load(open(sys.argv[1]))
executor.Executor().Do(artifact_utils.parse_artifact_dict(spec["inputs"]),
                       artifact_utils.parse_artifact_dict(spec["outputs"]), spec["properties"])
"""


def _free_ports(count: int):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def trainer_outputs(out_dir: pathlib.Path):
  """A trainer's output dict: its model and model run, in folders of `out_dir`."""
  from tfx.types import standard_artifacts
  outputs = {"model": [standard_artifacts.Model()], "model_run": [standard_artifacts.ModelRun()]}
  for key, [artifact] in outputs.items():
    artifact.uri = str(out_dir / key)
  return outputs


def train_on_workers(out_dir: pathlib.Path, inputs, properties, workers: int):
  """A trainer's executor (both trainers share it) in `workers` processes, each with TF_CONFIG as a cluster
  job sets it (worker 0 the chief); -> its (model, model_run) artifacts, under `out_dir`."""
  from tfx.types import artifact_utils
  outputs = trainer_outputs(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  spec = out_dir / "executor.json"
  spec.write_text(json.dumps({"inputs": artifact_utils.jsonify_artifact_dict(inputs),
                              "outputs": artifact_utils.jsonify_artifact_dict(outputs), "properties": properties}))
  cluster = {"worker": [f"localhost:{port}" for port in _free_ports(workers)]}
  processes = [subprocess.Popen(
      [sys.executable, "-c", _TRAINER_WORKER, str(spec)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
      for i in range(workers)]
  logs = [process.communicate(timeout=600)[0] for process in processes]
  for process, log in zip(processes, logs):
    assert process.returncode == 0, log[-3000:]
  return outputs["model"][0], outputs["model_run"][0]
