"""Compiles the SID refresh or the daily pipeline for Kubeflow Pipelines (KFP v2 / Vertex AI Pipelines) with
KubeflowV2DagRunner: the same pipelines as the local runs, only the config differs.

  python -m kubeflow.runner --pipeline sid_refresh|daily --image IMAGE --pipeline_root gs://BUCKET/sid_ranking \\
      --data_root gs://BUCKET/input --span_period month --start_date 2016-01-01 \\
      [--beam_runner DataflowRunner --project P --region R --temp_location gs://BUCKET/tmp] [--output F]

--data_root is the span-partitioned input (backfill/ and span-<N>/ folders, pipeline/partition.py). The
daily spec takes its span as the runtime parameter `range_config` (kubeflow.SPAN_PARAMETER, a RangeConfig
JSON) whose default, empty, ingests the latest span present when the run starts: what the daily schedule
(kubeflow/schedule.py) runs. Compiling reads no data: SpanExampleGen's driver resolves the span and
fingerprints its files at run time.

The daily spec's resolvers are TFX's stock ones (pipeline/stages/ranking.py says what differs), which
TFX 1.16 compiles to queries by artifact type alone (the spec's resolver executors), and every query of a
custom type as "tfx.Artifact". The compile step rewrites each query to the type its output is declared
with, and adds a property clause where the shared pipeline name has two producers of the type
(_query_declared_types). The RQ-VAE and the text encoder have types of their own (formats/artifacts.py),
so that the ranking model's query ("tfx.Model") finds ranking models only. Verified offline only, on the
compiled spec (no cluster here): whether Vertex AI / KFP match instance-schema titles and custom
properties in resolver queries is untested, and the queries assume a killed task leaves no LIVE output.

Writes the spec to --output: a .yaml file holds the PipelineSpec that KFP's client uploads, any other name a
PipelineJob JSON for Vertex AI. The image is built from kubeflow/Dockerfile. With --beam_runner
DataflowRunner the Beam components run on Dataflow, shipping the project with --setup_file; the default
keeps Beam in the component's container.
"""

import argparse
import json
import os
import re
import sys
from typing import Any, Dict, List, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import yaml
from tfx.dsl.io import fileio
from tfx.orchestration import data_types
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

import kubeflow
from formats import artifacts, spans
from formats.errors import InputDataError
from pipeline import configs, pipeline
from pipeline.stages.semantic_ids import FROZEN_RQVAE_VERSION

SID_REFRESH, DAILY = "sid_refresh", "daily"
# KFP pipeline names allow [a-z0-9-] only. Both pipelines share it, so that the daily runs' resolvers
# find the refresh's artifacts.
PIPELINE_NAME = configs.PIPELINE_NAME.replace("_", "-")
# Inside the image (kubeflow/Dockerfile) the project lives here.
IMAGE_PROJECT_ROOT = "/pipeline"
# The clause a resolver query of a type adds to pick the daily runs' artifact where two nodes of the
# pipeline name write that type: the SID refresh's v1 RQ-VAE, not v0, and the Semantic IDs it assigned;
# the refresh's text encoder, not a daily run's empty `encoder` output.
QUERY_CLAUSES = {
    artifacts.RQVAEModel.TYPE_NAME:
        f'metadata.{artifacts.VERSION}.string_value="{FROZEN_RQVAE_VERSION}"',
    artifacts.SemanticIds.TYPE_NAME:
        f'metadata.{artifacts.RQVAE_VERSION}.string_value="{FROZEN_RQVAE_VERSION}"',
    artifacts.TextEncoderModel.TYPE_NAME: f"metadata.{artifacts.EXPORTED}.number_value=1",
}
# In the executor labels of the retrieval stage's resolvers (pipeline/stages/retrieval.py).
RETRIEVAL_RESOLVER = "Retrieval"
_SCHEMA_TITLE = re.compile(r'^schema_title="[^"]*"')


def beam_args(runner: str, project: Optional[str], region: Optional[str], temp_location: Optional[str]) -> List[str]:
  if runner == "DirectRunner":
    return ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
  missing = [name for name, value in (("--project", project), ("--region", region),
                                      ("--temp_location", temp_location)) if not value]
  if missing:
    raise ValueError(f"--beam_runner {runner} needs {', '.join(missing)}")
  return [f"--runner={runner}", f"--project={project}", f"--region={region}",
          f"--temp_location={temp_location}", f"--setup_file={IMAGE_PROJECT_ROOT}/setup.py"]


def _build_pipeline(name: str, config: configs.PipelineConfig) -> tfx_pipeline.Pipeline:
  if name == DAILY:
    return pipeline.create_daily_pipeline(config, data_types.RuntimeParameter(
        name=kubeflow.SPAN_PARAMETER, ptype=str, default=kubeflow.LATEST_SPAN))
  return pipeline.create_sid_refresh_pipeline(config, stock_resolvers=True)


def compile_pipeline(name: str, config: configs.PipelineConfig, image: str, output: str) -> str:
  """Writes pipeline `name` compiled with `config` to `output` (see the module docstring for the format)."""
  defaults = {kubeflow.SPAN_PARAMETER: kubeflow.LATEST_SPAN} if name == DAILY else {}
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          display_name=f"{config.pipeline_name}-{name.replace('_', '-')}", default_image=image,
          use_pipeline_spec_2_1=True))
  job = runner.run(_build_pipeline(name, config), parameter_values=defaults, write_out=False)
  _add_defaults(job["pipelineSpec"], defaults, config.pipeline_root)
  _query_declared_types(job["pipelineSpec"])
  with fileio.open(output, "w") as f:
    if output.endswith((".yaml", ".yml")):
      yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
    else:
      json.dump(job, f, sort_keys=True, indent=1)
  return output


def _add_defaults(spec: Dict[str, Any], defaults: Dict[str, Any], pipeline_root: str) -> None:
  """What TFX's compiler leaves to the PipelineJob's runtimeConfig, in the spec itself, as KFP's own
  compiler writes it: a run or a recurring run from the spec alone gets the parameters' defaults and the
  pipeline root."""
  for name, value in defaults.items():
    spec["root"]["inputDefinitions"]["parameters"][name].update(defaultValue=value, isOptional=True)
  spec["defaultPipelineRoot"] = pipeline_root


def declared_title(artifact_type: Dict[str, Any]) -> str:
  """The schema title of an artifactType of the spec (a schemaTitle, or the title of an instanceSchema)."""
  return artifact_type.get("schemaTitle") or yaml.safe_load(artifact_type["instanceSchema"])["title"]


def _query_declared_types(spec: Dict[str, Any]) -> None:
  """Each resolver query asks for the type its output is declared with, plus QUERY_CLAUSES' clause.

  TFX 1.16's compiler (compiler_utils.get_artifact_title) writes `schema_title="tfx.Artifact"` in the
  query of every custom type, while the resolver's output is declared with the type's own title: any
  custom artifact would be resolved. Stock resolvers also ignore the channels' producer_component_id,
  hence the clauses. Verified on the compiled spec only: no cluster here."""
  components = {component["executorLabel"]: component for component in spec["components"].values()}
  for label, executor in spec["deploymentSpec"]["executors"].items():
    for key, query in executor.get("resolver", {}).get("outputArtifactQueries", {}).items():
      title = declared_title(components[label]["outputDefinitions"]["artifacts"][key]["artifactType"])
      query["filter"], found = _SCHEMA_TITLE.subn(f'schema_title="{title}"', query["filter"])
      if not found:
        raise ValueError(f"{label}: the query of {key} does not start with schema_title: {query['filter']}")
      if title in QUERY_CLAUSES:
        query["filter"] += f" AND {QUERY_CLAUSES[title]}"
      clause = model_kind_clause(label, title)
      if clause:
        query["filter"] += f" AND {clause}"


def model_kind_clause(executor_label: str, title: str) -> str:
  """Ranking and retrieval models are both tfx.Model: a model query asks for its resolver's kind (the
  retrieval resolvers' node ids name it), a retrieval blessing query for a retrieval model's blessing. The
  ranking side's blessing query cannot ask for TFMA's blessings alone (they carry no such property): when the
  newest blessing is a retrieval one, the ranker is evaluated without a baseline that day (unverified on a
  cluster, as the rest)."""
  retrieval = RETRIEVAL_RESOLVER in executor_label
  if title == "tfx.Model":
    kind = artifacts.RETRIEVAL if retrieval else artifacts.RANKING
    return f'metadata.{artifacts.MODEL_KIND}.string_value="{kind}"'
  if title == "tfx.ModelBlessing" and retrieval:
    return f'metadata.{artifacts.MODEL_KIND}.string_value="{artifacts.RETRIEVAL}"'
  return ""


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pipeline", required=True, choices=(SID_REFRESH, DAILY))
  parser.add_argument("--image", required=True, help="the pipeline image built from kubeflow/Dockerfile")
  parser.add_argument("--pipeline_root", required=True,
                      help="the loop's output root, e.g. gs://BUCKET/sid_ranking: TFX's pipeline root is "
                           "<it>/pipeline_root, pushed models go to <it>/serving/sid_ranking and the content "
                           "encoder to <it>/serving/content_encoder")
  parser.add_argument("--data_root", required=True,
                      help="the span-partitioned input (backfill/, span-<N>/), e.g. gs://BUCKET/input")
  parser.add_argument("--span_period", required=True, choices=spans.PERIODS)
  parser.add_argument("--start_date", required=True,
                      help="the first daily span's start date; the SID refresh learns from everything before")
  parser.add_argument("--output", help="default: <pipeline>.yaml")
  parser.add_argument("--beam_runner", default="DirectRunner", choices=("DirectRunner", "DataflowRunner"))
  parser.add_argument("--project")
  parser.add_argument("--region")
  parser.add_argument("--temp_location")
  parser.add_argument("--config", help="JSON file of PipelineConfig fields to override (model settings, the SID "
                      "refresh's warm starts...: see pipeline/configs.py)")
  args = parser.parse_args(argv)
  try:
    beam = beam_args(args.beam_runner, args.project, args.region, args.temp_location)
  except ValueError as e:
    parser.error(str(e))
  try:
    config = configs.PipelineConfig(**{
        **configs.PipelineConfig.overrides(args.config), "input_base": args.data_root,
        "output_root": args.pipeline_root, "span_period": args.span_period, "start_date": args.start_date,
        "pipeline_name": PIPELINE_NAME, "beam_pipeline_args": beam})
  except InputDataError as e:
    parser.error(str(e))
  print(compile_pipeline(args.pipeline, config, args.image, args.output or f"{args.pipeline}.yaml"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
