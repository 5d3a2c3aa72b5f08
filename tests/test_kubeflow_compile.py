"""Both pipelines compile for Kubeflow Pipelines (KFP v2) without reading the data, the daily one with its
span as a runtime parameter, and the daily schedule is planned and created as KFP's client expects."""

import inspect
import json
import subprocess
import sys
import types

import kfp
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2 import compiler_utils
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
from tfx.types.artifact import Artifact
from tfx.utils import import_utils

import formats
from formats import artifacts
from formats.errors import InputDataError
from kubeflow import runner, schedule

IMAGE = "example.com/sid-ranking:test"
DAILY_TASKS = {"LatestFeatureState", "SpanExampleGen", "StatisticsGen", "InteractionsSchema", "ExampleValidator",
               "LatestSidArtifacts", "NewItemEmbedder", "SemanticIdAssigner", "LatestModel",
               "LatestBlessedModel-model-blessing-resolver", "LatestBlessedModel-model-resolver", "Evaluator",
               "Pusher", "RankingTrainer", "LatestRetrievalModel", "LatestBlessedRetrievalModel-model-resolver",
               "LatestBlessedRetrievalModel-model-blessing-resolver", "RetrievalEvaluator", "RetrievalPusher",
               "RecommenderPusher", "RetrievalTrainer"}
REFRESH_TASKS = {"SpanExampleGen", "StatisticsGen", "InteractionsSchema", "ExampleValidator", "ItemStatisticsGen",
                 "ItemsSchema", "ItemExampleValidator", "ContentEmbedder", "EncoderPusher", "PreviousSidArtifacts",
                 "RQVAETrainer", "SemanticIdAssigner", "SidQualityReport", "SidVocabBuilder", "PreviousRankingModel",
                 "RankingTrainer", "PreviousRetrievalModel", "RetrievalTrainer"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  """The daily spec (YAML, for KFP) and the SID refresh job (JSON, for Vertex AI), compiled by the CLI from an
  input base that does not exist: compiling must not read it."""
  out = tmp_path_factory.mktemp("kubeflow")
  common = ["--image", IMAGE, "--pipeline_root", "gs://bucket/root", "--data_root", str(out / "no_input"),
            "--span_period", "month", "--start_date", "2016-01-01", "--beam_runner", "DataflowRunner",
            "--project", "p", "--region", "r", "--temp_location", "gs://bucket/tmp"]
  paths = {"daily": str(out / "daily.yaml"), "sid_refresh": str(out / "sid_refresh.json")}
  for name, path in paths.items():
    assert runner.main(["--pipeline", name, "--output", path, *common]) == 0
  assert sorted(p.name for p in out.iterdir()) == ["daily.yaml", "sid_refresh.json"]
  with open(paths["daily"]) as f:
    daily = yaml.safe_load(f)
  with open(paths["sid_refresh"]) as f:
    refresh = json.load(f)
  return paths, daily, refresh, str(out / "no_input")


def test_daily_spec_takes_the_span_at_run_time(compiled):
  _, spec, _, input_base = compiled
  json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # what kfp.Client does with it
  assert spec["root"]["inputDefinitions"]["parameters"] == {
      "range_config": {"defaultValue": "", "isOptional": True, "parameterType": "STRING"}}
  tasks = spec["root"]["dag"]["tasks"]
  assert set(tasks) == DAILY_TASKS and len(tasks) == 21
  example_gen = tasks["SpanExampleGen"]["inputs"]["parameters"]
  assert example_gen["range_config"] == {"componentInputParameter": "range_config"}
  assert example_gen["input_base"] == {"runtimeValue": {"constant": input_base}}
  executors = spec["deploymentSpec"]["executors"]
  assert executors["SpanExampleGen_executor"]["container"]["lifecycle"]["preCacheCheck"]["command"] == [
      "python", "-m", "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"]
  resolvers = {label: sorted(e["resolver"]["outputArtifactQueries"]) for label, e in executors.items()
               if "resolver" in e}
  assert resolvers == {
      "LatestFeatureState_executor": ["state"],
      "LatestSidArtifacts_executor": ["embeddings", "semantic_ids", "sid_encoder", "text_encoder", "vocabulary"],
      "LatestModel_executor": ["model"],
      "LatestBlessedModel-model-blessing-resolver_executor": ["model_blessing"],
      "LatestBlessedModel-model-resolver_executor": ["model"],
      "LatestRetrievalModel_executor": ["model"],
      "LatestBlessedRetrievalModel-model-blessing-resolver_executor": ["model_blessing"],
      "LatestBlessedRetrievalModel-model-resolver_executor": ["model"]}
  assert {e["container"]["image"] for e in executors.values() if "container" in e} == {IMAGE}
  assert spec["pipelineInfo"] == {"name": "sid-ranking"}
  assert spec["defaultPipelineRoot"] == "gs://bucket/root/pipeline_root"
  text = json.dumps(spec)
  assert "--runner=DataflowRunner" in text and "--setup_file=/pipeline/setup.py" in text


def test_sid_refresh_job_has_every_component_and_no_parameter(compiled):
  _, _, job, _ = compiled
  spec = job["pipelineSpec"]
  assert set(spec["root"]["dag"]["tasks"]) == REFRESH_TASKS
  assert "inputDefinitions" not in spec["root"]
  assert job["displayName"] == "sid-ranking-sid-refresh" and spec["pipelineInfo"] == {"name": "sid-ranking"}
  assert job["runtimeConfig"] == {"gcsOutputDirectory": "gs://bucket/root/pipeline_root"}


def test_a_refresh_with_stable_codes_and_remap_resolves_the_previous_artifacts_of_their_kind(compiled, tmp_path,
                                                                                           capsys):
  paths, _, _, input_base = compiled
  settings = tmp_path / "refresh.json"
  settings.write_text(json.dumps({"rqvae_warm_start": True, "refresh_warm_start": "remap"}))
  common = ["--image", IMAGE, "--pipeline_root", "gs://bucket/root", "--data_root", input_base,
            "--span_period", "month", "--start_date", "2016-01-01"]
  output = str(tmp_path / "refresh.json.out")
  assert runner.main(["--pipeline", "sid_refresh", "--output", output, "--config", str(settings), *common]) == 0
  with open(output) as f:
    spec = json.load(f)["pipelineSpec"]
  assert set(spec["root"]["dag"]["tasks"]) == REFRESH_TASKS
  queries = {label: {key: query["filter"] for key, query in e["resolver"]["outputArtifactQueries"].items()}
             for label, e in spec["deploymentSpec"]["executors"].items() if "resolver" in e}
  assert sorted(queries) == ["PreviousRankingModel_executor", "PreviousRetrievalModel_executor",
                             "PreviousSidArtifacts_executor"]
  previous = queries["PreviousSidArtifacts_executor"]
  # Each previous model with what it was trained on: the SIDs and RQ-VAE the refresh starts from come with the
  # ranking model (LatestArtifactStrategy here: the newest of each).
  assert sorted(previous) == ["model", "semantic_ids", "sid_encoder"]
  assert sorted(queries["PreviousRankingModel_executor"]) == ["model", "semantic_ids", "vocabulary"]
  assert sorted(queries["PreviousRetrievalModel_executor"]) == ["model", "semantic_ids"]
  assert previous["sid_encoder"].endswith(runner.QUERY_CLAUSES[artifacts.RQVAEModel.TYPE_NAME])
  assert previous["semantic_ids"].endswith(runner.QUERY_CLAUSES[artifacts.SemanticIds.TYPE_NAME])
  for label, kind in (("PreviousSidArtifacts_executor", artifacts.RANKING),
                      ("PreviousRankingModel_executor", artifacts.RANKING),
                      ("PreviousRetrievalModel_executor", artifacts.RETRIEVAL)):
    assert queries[label]["model"].endswith(f'metadata.{artifacts.MODEL_KIND}.string_value="{kind}"')
  settings.write_text(json.dumps({"refresh_warm_start": "scratch"}))
  assert runner.main(["--pipeline", "sid_refresh", "--output", output, "--config", str(settings), *common]) == 0
  with open(output) as f:
    assert set(json.load(f)["pipelineSpec"]["root"]["dag"]["tasks"]) == REFRESH_TASKS - {
        "PreviousRankingModel", "PreviousRetrievalModel"}
  for bad, message in (({"refresh_warm_start": "retrain"}, "refresh_warm_start must be one of scratch, remap, got "
                                                           "'retrain'"),
                       ({"rqvae_warmstart": True}, "unknown settings rqvae_warmstart")):
    settings.write_text(json.dumps(bad))
    with pytest.raises(SystemExit):
      runner.main(["--pipeline", "sid_refresh", "--output", output, "--config", str(settings), *common])
    assert message in capsys.readouterr().err


def _artifact_types(node):
  """Every artifactType in a spec (components' input and output definitions)."""
  if isinstance(node, dict):
    if "artifactType" in node:
      yield node["artifactType"]
    for value in node.values():
      yield from _artifact_types(value)
  elif isinstance(node, list):
    for value in node:
      yield from _artifact_types(value)


def test_every_artifact_type_loads_in_the_container_by_its_title(compiled):
  """As TFX's KFP v2 entrypoint does: the class path from the type schema, then the class by that path."""
  _, daily, refresh, _ = compiled
  loaded = {}
  for artifact_type in [*_artifact_types(daily), *_artifact_types(refresh["pipelineSpec"])]:
    schema = json_format.ParseDict(artifact_type, pipeline_spec_pb2.ArtifactTypeSchema())
    title = runner.declared_title(artifact_type)
    class_path = kubeflow_v2_entrypoint_utils._retrieve_class_path(schema)
    loaded[title] = import_utils.import_class_by_path(class_path)
  assert sorted(loaded) == [
      "formats.FeatureState", "formats.IngestionReport", "formats.ItemEmbeddings", "formats.RQVAEModel",
      "formats.SemanticIds", "formats.SidAdaptationReport", "formats.SidQualityReport", "formats.SidVocabulary",
      "formats.TextEncoderModel", "tfx.ExampleAnomalies", "tfx.ExampleStatistics", "tfx.Examples", "tfx.Model",
      "tfx.ModelBlessing", "tfx.ModelEvaluation", "tfx.ModelRun", "tfx.PushedModel", "tfx.Schema"]
  for title, cls in loaded.items():
    assert cls.TYPE_NAME == (title[len("tfx."):] if title in compiler_utils.TITLE_TO_CLASS_PATH else title)
  assert loaded["formats.RQVAEModel"] is artifacts.RQVAEModel


def test_formats_exposes_every_artifact_type_without_importing_tfx():
  declared = {name for name, value in vars(artifacts).items()
              if isinstance(value, type) and issubclass(value, Artifact) and value is not Artifact}
  assert formats._ARTIFACT_TYPES == declared
  assert all(getattr(formats, name).TYPE_NAME == f"formats.{name}" for name in declared)
  with pytest.raises(AttributeError, match="module 'formats' has no attribute 'Model'"):
    getattr(formats, "Model")
  imported = subprocess.run(
      [sys.executable, "-c", "import sys, formats, formats.spans; print('tfx' in sys.modules)"],
      capture_output=True, text=True, check=True)
  assert imported.stdout == "False\n"


def test_daily_resolvers_query_the_types_their_outputs_are_declared_with(compiled):
  _, spec, _, _ = compiled
  executors = spec["deploymentSpec"]["executors"]
  queries = {(label, key): query["filter"] for label, e in executors.items() if "resolver" in e
             for key, query in e["resolver"]["outputArtifactQueries"].items()}
  live = " AND state=LIVE"
  current = " AND name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\""
  ranking, retrieval = (f' AND metadata.model_kind.string_value="{kind}"' for kind in ("ranking", "retrieval"))
  assert queries == {
      ("LatestFeatureState_executor", "state"): 'schema_title="formats.FeatureState"' + live,
      ("LatestSidArtifacts_executor", "embeddings"): 'schema_title="formats.ItemEmbeddings"' + live,
      ("LatestSidArtifacts_executor", "semantic_ids"):
          'schema_title="formats.SemanticIds"' + live + ' AND metadata.rqvae_version.string_value="v1"',
      ("LatestSidArtifacts_executor", "sid_encoder"):
          'schema_title="formats.RQVAEModel"' + live + ' AND metadata.version.string_value="v1"',
      ("LatestSidArtifacts_executor", "text_encoder"):
          'schema_title="formats.TextEncoderModel"' + live + " AND metadata.exported.number_value=1",
      ("LatestSidArtifacts_executor", "vocabulary"): 'schema_title="formats.SidVocabulary"' + live,
      ("LatestModel_executor", "model"): 'schema_title="tfx.Model"' + live + ranking,
      ("LatestBlessedModel-model-blessing-resolver_executor", "model_blessing"):
          'schema_title="tfx.ModelBlessing"' + live + " AND metadata.blessed.number_value=1",
      ("LatestBlessedModel-model-resolver_executor", "model"):
          'schema_title="tfx.Model"' + live + current + ranking,
      ("LatestRetrievalModel_executor", "model"): 'schema_title="tfx.Model"' + live + retrieval,
      ("LatestBlessedRetrievalModel-model-blessing-resolver_executor", "model_blessing"):
          'schema_title="tfx.ModelBlessing"' + live + " AND metadata.blessed.number_value=1" + retrieval,
      ("LatestBlessedRetrievalModel-model-resolver_executor", "model"):
          'schema_title="tfx.Model"' + live + current + retrieval}
  outputs = {c["executorLabel"]: c["outputDefinitions"]["artifacts"] for c in spec["components"].values()}
  declared = {(label, key): runner.declared_title(outputs[label][key]["artifactType"]) for label, key in queries}
  for where, query in queries.items():
    assert query.startswith(f'schema_title="{declared[where]}" AND ')
  models = [declared[("LatestModel_executor", "model")], declared[("LatestSidArtifacts_executor", "sid_encoder")],
            declared[("LatestSidArtifacts_executor", "text_encoder")]]
  assert models == ["tfx.Model", "formats.RQVAEModel", "formats.TextEncoderModel"]


def test_dataflow_needs_project_region_and_temp_location():
  with pytest.raises(ValueError, match="--beam_runner DataflowRunner needs --region, --temp_location"):
    runner.beam_args("DataflowRunner", "p", None, None)


def _expected_run(spec_path: str) -> dict:
  return {"job_name": "sid-ranking-daily", "experiment": "sid-ranking",
          "description": "sid-ranking: the daily run, on the latest span present; cron 0 30 2 * * * in UTC",
          "cron_expression": "0 30 2 * * *", "timezone": "UTC", "pipeline_package_path": spec_path,
          "pipeline_name": "sid-ranking", "params": {"range_config": ""}, "max_concurrency": 1,
          "no_catchup": True}


def _no_client(host):
  raise AssertionError(f"no client expected, got host {host}")


def test_schedule_dry_run_prints_the_recurring_run(compiled, capsys):
  paths, _, _, _ = compiled
  assert schedule.main(["--spec", paths["daily"]], make_client=_no_client) == 0
  assert json.loads(capsys.readouterr().out) == _expected_run(paths["daily"])


def test_schedule_refuses_a_bad_cron(compiled, capsys):
  paths, _, _, _ = compiled
  assert schedule.main(["--spec", paths["daily"], "--cron", "61 * * * * *"], make_client=_no_client) == 2
  assert capsys.readouterr().err == "Refused: cron '61 * * * * *': second 61 is outside 0-59\n"


def test_schedule_refuses_other_specs(compiled, tmp_path):
  paths, spec, _, _ = compiled
  with pytest.raises(InputDataError, match=r"sid_refresh.json: KFP's client takes a .yaml pipeline spec"):
    schedule.plan(paths["sid_refresh"])
  del spec["root"]["inputDefinitions"]
  other = tmp_path / "other.yaml"
  other.write_text(yaml.safe_dump(spec))
  with pytest.raises(InputDataError) as error:
    schedule.plan(str(other))
  assert str(error.value) == f"{other} is not the daily pipeline: it has no runtime parameter range_config " \
                             f"(parameters: none)"


class FakeClient:
  """Records what kfp.Client would be asked."""

  def __init__(self, host: str):
    self.host = host
    self.calls = []

  def create_experiment(self, name):
    self.calls.append(("create_experiment", {"name": name}))
    return types.SimpleNamespace(experiment_id="experiment-1")

  def create_recurring_run(self, **kwargs):
    self.calls.append(("create_recurring_run", kwargs))
    return types.SimpleNamespace(recurring_run_id="recurring-1")


def test_schedule_creates_the_recurring_run_with_the_kfp_client(compiled, capsys):
  paths, _, _, _ = compiled
  clients = []

  def make_client(host):
    clients.append(FakeClient(host))
    return clients[-1]

  assert schedule.main(["--spec", paths["daily"], "--host", "http://kfp:8888", "--experiment", "loop",
                        "--cron", "0 0 3 * * MON-FRI", "--timezone", "Europe/Paris"], make_client=make_client) == 0
  [client] = clients
  assert client.host == "http://kfp:8888"
  expected = {"experiment_id": "experiment-1", "job_name": "sid-ranking-daily",
              "description": "sid-ranking: the daily run, on the latest span present; cron 0 0 3 * * MON-FRI in "
                             "Europe/Paris",
              "cron_expression": "0 0 3 * * MON-FRI", "max_concurrency": 1, "no_catchup": True,
              "params": {"range_config": ""}, "pipeline_package_path": paths["daily"]}
  assert client.calls == [("create_experiment", {"name": "loop"}), ("create_recurring_run", expected)]
  inspect.signature(kfp.Client.create_recurring_run).bind(client, **expected)  # kfp 2.x's own argument names
  assert capsys.readouterr().out == "Created recurring run recurring-1\n"


@pytest.mark.parametrize("cron", ["0 30 2 * * *", "0 0 9 ? * MON-FRI", "*/15 0,30 1-5/2 1 jan-Mar 0"])
def test_cron_accepted(cron):
  assert schedule.check_cron(cron) == cron


@pytest.mark.parametrize("cron, message", [
    ("30 2 * * *", "cron '30 2 * * *' has 5 fields; KFP's has 6, seconds first (second minute hour day-of-month "
                   "month day-of-week), e.g. '0 30 2 * * *' for 02:30:00 every day"),
    ("0 0 24 * * *", "cron '0 0 24 * * *': hour 24 is outside 0-23"),
    ("0 0 0 * * 7", "cron '0 0 0 * * 7': day-of-week 7 is outside 0-6 (SUN-SAT)"),
    ("0 0 0 * FOO *", "cron '0 0 0 * FOO *': month FOO is not a number in 1-12 (JAN-DEC)"),
    ("0 5-2 * * * *", "cron '0 5-2 * * * *': minute range '5-2' ends before it starts"),
    ("0 */0 * * * *", "cron '0 */0 * * * *': minute '*/0' has a step of 0"),
    ("? * * * * *", "cron '? * * * * *': second '?' is not *, a value, a range a-b or a step */n (? is for "
                    "day-of-month and day-of-week only)"),
])
def test_cron_refused(cron, message):
  with pytest.raises(InputDataError) as error:
    schedule.check_cron(cron)
  assert str(error.value) == message


def test_unknown_timezone_refused():
  with pytest.raises(InputDataError, match=r"^unknown timezone 'Mars/Base': give an IANA name"):
    schedule.check_timezone("Mars/Base")
