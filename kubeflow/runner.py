"""Compiles the pipeline for Kubeflow Pipelines (KFP v2 / Vertex AI Pipelines) with
KubeflowV2DagRunner: the same create_pipeline(...) as the local runner, only the config differs.

  python -m kubeflow.runner --image IMAGE --pipeline_root gs://BUCKET/root --data_root gs://BUCKET/ml \\
      [--beam_runner DataflowRunner --project P --region R --temp_location gs://BUCKET/tmp] [--output F]

Writes the pipeline spec (JSON) to upload with the KFP UI/SDK or submit to Vertex AI. The image is
built from kubeflow/Dockerfile. With --beam_runner DataflowRunner the Beam components (ExampleGen,
ContentEmbedder, SemanticIdAssigner, SidVocabBuilder, StatisticsGen, Evaluator) run on Dataflow,
shipping the project with --setup_file; the default keeps Beam in the component's container.
"""

import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # pylint: disable=g-import-not-at-top

from pipeline import configs, pipeline  # pylint: disable=g-import-not-at-top

SPEC_FILE = "sid_ranking_pipeline.json"
# KFP pipeline names allow [a-z0-9-] only.
PIPELINE_NAME = configs.PIPELINE_NAME.replace("_", "-")
# Inside the image (kubeflow/Dockerfile) the project lives here.
IMAGE_PROJECT_ROOT = "/pipeline"


def beam_args(runner: str, project: Optional[str], region: Optional[str], temp_location: Optional[str]) -> List[str]:
  if runner == "DirectRunner":
    return ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
  missing = [name for name, value in (("--project", project), ("--region", region),
                                      ("--temp_location", temp_location)) if not value]
  if missing:
    raise ValueError(f"--beam_runner {runner} needs {', '.join(missing)}")
  return [f"--runner={runner}", f"--project={project}", f"--region={region}",
          f"--temp_location={temp_location}", f"--setup_file={IMAGE_PROJECT_ROOT}/setup.py"]


def compile_pipeline(image: str, pipeline_root: str, data_root: str, output: str,
                     beam_pipeline_args: List[str]) -> str:
  sid_pipeline = pipeline.create_pipeline(**{
      **configs.pipeline_args(), "pipeline_name": PIPELINE_NAME, "pipeline_root": pipeline_root,
      "data_root": data_root, "serving_model_dir": os.path.join(pipeline_root, "serving", configs.PIPELINE_NAME),
      "beam_pipeline_args": beam_pipeline_args})
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=image),
      output_dir=os.path.dirname(os.path.abspath(output)), output_filename=os.path.basename(output))
  runner.run(sid_pipeline, write_out=True)
  return output


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", required=True, help="the pipeline image built from kubeflow/Dockerfile")
  parser.add_argument("--pipeline_root", required=True, help="e.g. gs://BUCKET/sid_ranking")
  parser.add_argument("--data_root", required=True, help="MovieLens-format directory, e.g. gs://BUCKET/ml")
  parser.add_argument("--output", default=SPEC_FILE)
  parser.add_argument("--beam_runner", default="DirectRunner", choices=("DirectRunner", "DataflowRunner"))
  parser.add_argument("--project")
  parser.add_argument("--region")
  parser.add_argument("--temp_location")
  args = parser.parse_args(argv)
  try:
    beam = beam_args(args.beam_runner, args.project, args.region, args.temp_location)
  except ValueError as e:
    parser.error(str(e))
  print(compile_pipeline(args.image, args.pipeline_root, args.data_root, args.output, beam))
  return 0


if __name__ == "__main__":
  sys.exit(main())
