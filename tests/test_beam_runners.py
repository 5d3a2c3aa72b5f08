"""The project's Beam executors on engines where every DoFn is pickled into other processes, as on a
cluster: Beam's FnApiRunner in multi_processing mode, and Beam's DaskRunner on a dask.distributed
cluster of worker processes. Each executor's outputs (every file, every record, every artifact
property) must equal its in_memory run's exactly.

Each case runs the executor's Do() through the helpers of its own executor_test.py; CASES is the
list to extend. Every executor runs on both engines: what the DaskRunner gets wrong, and the
transforms that avoid it, are in pipeline/beam_runners.py and components/beam_io.py.
"""

import os
from typing import Callable, Dict, List

import apache_beam as beam
import numpy as np
import pytest
from dask import distributed
from tfx import types

import conftest
from components.content_embedder import executor_test as content_embedder_test
from components.semantic_id_assigner import executor_test as semantic_id_assigner_test
from components.semantic_id_assigner.executor_test import frozen  # noqa: F401  (a fixture)
from components.sid_vocab_builder import executor_test as sid_vocab_builder_test
from components.span_example_gen import executor as span_example_gen_executor
from components.span_example_gen import executor_test as span_example_gen_test
from components import beam_io
from pipeline import beam_runners, configs, pipeline


def _sid_vocab_builder(tmp_path, request) -> List[types.Artifact]:
  del request
  return list(sid_vocab_builder_test._run(tmp_path))


def _semantic_id_assigner(tmp_path, request) -> List[types.Artifact]:
  _, model = request.getfixturevalue("frozen")
  vectors = np.random.default_rng(1).normal(size=(40, 8)).astype(np.float32)
  vectors[30:] = vectors[0]  # Collisions, so that suffixes are assigned across workers.
  embeddings = conftest.embeddings_artifact(tmp_path / "embeddings", vectors)
  return [semantic_id_assigner_test._assign(tmp_path, embeddings, model)]


def _content_embedder(tmp_path, request) -> List[types.Artifact]:
  # The stand-in encoder: MiniLM would be exported (89 MB), then loaded by every worker process.
  request.getfixturevalue("monkeypatch").setattr(
      content_embedder_test.content_encoder, "export_saved_model",
      content_embedder_test._export_length_encoder)
  return list(content_embedder_test._embed(
      tmp_path, content_embedder_test._items(tmp_path, [1, 2, 4, 5]),
      previous_embeddings=content_embedder_test._previous(tmp_path, 3), export_encoder=0))


@pytest.fixture(scope="module")
def span_example_gen_backfill(tmp_path_factory):
  """The partitioned input and its backfill, ingested once in memory: (input_base, FeatureState)."""
  test = span_example_gen_test
  tmp = tmp_path_factory.mktemp("span_example_gen")
  base = test._write_partitioned(tmp / "input")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(configs, "BEAM_PIPELINE_ARGS", beam_runners.local_args())
    backfill, _ = test._ingest(base, tmp / "backfill", end_date=test.FIRST_DAILY_DATE)
  return base, backfill["state"]


def _span_example_gen(tmp_path, request) -> List[types.Artifact]:
  """The first daily span on the backfill's FeatureState."""
  base, state = request.getfixturevalue("span_example_gen_backfill")
  outputs, _ = span_example_gen_test._ingest(base, tmp_path, span=span_example_gen_test.DAILY[0],
                                             previous=state)
  return list(outputs.values())


# Executor -> a run of its Do() on tiny artifacts under tmp_path, returning the output artifacts.
CASES: Dict[str, Callable[..., List[types.Artifact]]] = {
    "SpanExampleGen": _span_example_gen,
    "SidVocabBuilder": _sid_vocab_builder,
    "SemanticIdAssigner": _semantic_id_assigner,
    "ContentEmbedder": _content_embedder,
}


@pytest.fixture(scope="module")
def dask_address():
  """One cluster for the module: worker processes import TensorFlow once, not once per test."""
  with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                dashboard_address=None) as cluster:
    yield cluster.scheduler_address
    # The DaskRunner connects a client for each pipeline and never closes it.
    while True:
      try:
        distributed.default_client().close()
      except ValueError:  # No client left.
        break


@pytest.fixture(scope="module")
def in_memory_outputs(tmp_path_factory):
  """Executor -> its outputs with the pipeline's default (in_memory) Beam arguments, run once."""
  runs = {}

  def outputs(case: str, request) -> Dict[str, List[str]]:
    if case not in runs:
      root = tmp_path_factory.mktemp(f"in_memory_{case}")
      runs[case] = conftest.artifact_contents(str(root), CASES[case](root, request))
    return runs[case]
  return outputs


def test_configs_keep_the_in_memory_engine():
  assert configs.BEAM_PIPELINE_ARGS == beam_runners.local_args("in_memory", 1) == [
      "--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1",
      f"--setup_file={os.path.join(configs.PROJECT_ROOT, 'setup.py')}"]
  with pytest.raises(ValueError, match="running mode must be one of in_memory, multi_threading, "
                                       "multi_processing, got 'threads'"):
    beam_runners.local_args("threads")


BATCHES = [[f"{name}{i}".encode() for i in range(20)] for name in "abc"]


@pytest.mark.parametrize("engine", ["in_memory", "dask"])
def test_tags_batches_and_one_sink_that_writes_every_shard(engine, tmp_path, request):
  args = (beam_runners.dask_args(request.getfixturevalue("dask_address")) if engine == "dask" else
          beam_runners.local_args())
  files = {"even": beam_io.TFRecordFiles(str(tmp_path / "even"), ".gz", shards=2),
           "none": beam_io.TFRecordFiles(str(tmp_path / "none" / "data"), ".gz", shards=2),
           "lists": beam_io.TFRecordFiles(str(tmp_path / "lists" / "data"), ".gz", shards=2),
           "sizes": beam_io.TextFile(str(tmp_path / "sizes.txt"))}
  with beam.Pipeline(argv=args) as p:
    pairs = p | "Pairs" >> beam.Create([(i, str(i).encode()) for i in range(10)])
    by_parity = (pairs
                 | "Tag" >> beam.MapTuple(lambda i, value: ("even" if i % 2 == 0 else "odd", value))
                 | "ByParity" >> beam_io.ByTag("even", "odd"))
    sizes = (pairs
             | "Batch" >> beam_io.Batches(3, 10)
             | "Sizes" >> beam.Map(lambda batch: str(len(batch))))
    lists = p | "Lists" >> beam.Create(BATCHES)
    _ = ({"even": by_parity["even"], "none": p | "None" >> beam.Create([]), "lists": lists, "sizes": sizes}
         | "Write" >> beam_io.WriteFiles(files))

  written = sorted(os.path.relpath(os.path.join(folder, name), tmp_path)
                   for folder, _, names in os.walk(tmp_path) for name in names)
  assert written == ["even-00000-of-00002.gz", "even-00001-of-00002.gz",
                     "lists/data-00000-of-00002.gz", "lists/data-00001-of-00002.gz",
                     "none/data-00000-of-00002.gz", "none/data-00001-of-00002.gz", "sizes.txt"]
  assert sorted(r for path in written[:2] + written[4:6]
                for r in conftest.file_contents(str(tmp_path / path), "")) == [
      repr(str(i).encode()) for i in (0, 2, 4, 6, 8)]
  # A list is a batch of records, written whole to one shard (20 records hashed one by one would all land in
  # one of 2 shards once in 2^19).
  shards = [set(conftest.file_contents(str(tmp_path / path), "")) for path in written[2:4]]
  assert sorted(set.union(*shards)) == sorted(repr(r) for batch in BATCHES for r in batch)
  for batch in BATCHES:
    assert any({repr(r) for r in batch} <= shard for shard in shards)
  # Ids modulo 4 keys (10 pairs in batches of 3): {0, 4, 8}, {1, 5, 9}, {2, 6}, {3, 7}.
  assert sorted((tmp_path / "sizes.txt").read_text().split()) == ["2", "2", "3", "3"]


@pytest.mark.parametrize("engine", ["multi_processing", "dask"])
@pytest.mark.parametrize("case", list(CASES))
def test_outputs_equal_the_in_memory_run(case, engine, tmp_path, request, monkeypatch,
                                         in_memory_outputs):
  expected = in_memory_outputs(case, request)
  args = (beam_runners.dask_args(request.getfixturevalue("dask_address")) if engine == "dask" else
          beam_runners.local_args("multi_processing", 2))
  # conftest.beam_context() and the executor tests read the pipeline's arguments from configs.
  monkeypatch.setattr(configs, "BEAM_PIPELINE_ARGS", args)
  # Input files in pieces of a few lines, each read by some worker: the in-memory run read them whole.
  monkeypatch.setattr(span_example_gen_executor, "PIECE_BYTES", 64)
  assert conftest.artifact_contents(str(tmp_path), CASES[case](tmp_path, request)) == expected


def test_engine_args_and_where_tfx_components_run():
  dask = beam_runners.engine_args("dask")
  assert dask == [f"--runner={beam_runners.DASK_RUNNER}", "--dask_client_address=local", "--dask_npartitions=16",
                  f"--setup_file={beam_runners.SETUP_FILE}"]
  assert beam_runners.engine_args("dask", "tcp://h:8786")[1] == "--dask_client_address=tcp://h:8786"
  assert beam_runners.engine_args("multi_processing") == beam_runners.local_args("multi_processing", 0)
  assert beam_runners.tfx_component_args(dask) == beam_runners.local_args("multi_processing", 0)
  assert beam_runners.tfx_component_args(beam_runners.local_args()) is None
  with pytest.raises(ValueError, match="Beam engine must be one of in_memory, multi_processing, dask, got 'spark'"):
    beam_runners.engine_args("spark")


def test_under_dask_only_tfx_own_beam_components_leave_the_cluster(tmp_path):
  config = configs.PipelineConfig(input_base=str(tmp_path / "input"), output_root=str(tmp_path / "out"),
                                  span_period="month", start_date="2015-01-01",
                                  beam_pipeline_args=beam_runners.engine_args("dask", "tcp://h:8786"))
  components = pipeline.create_sid_refresh_pipeline(config).components
  beam_args = {c.id: c.executor_spec.beam_pipeline_args for c in components if hasattr(c, "with_beam_pipeline_args")}
  dask = config.beam_pipeline_args
  assert beam_args["StatisticsGen"] == dask + beam_runners.local_args("multi_processing", 0)
  assert beam_args["SpanExampleGen"] == beam_args["SemanticIdAssigner"] == beam_args["SidVocabBuilder"] == dask


def test_a_local_cluster_is_started_for_the_block_and_args_name_it():
  with beam_runners.running(beam_runners.local_args()) as args:
    assert args == beam_runners.local_args()
  with beam_runners.running(beam_runners.engine_args("dask")) as args:
    address = beam_runners.dask_address(args)
    assert address.startswith("tcp://127.0.0.1:")
    with distributed.Client(address) as client:
      assert len(client.scheduler_info()["workers"]) == beam_runners.LOCAL_CLUSTER_WORKERS
