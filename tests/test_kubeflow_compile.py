"""The pipeline compiles for Kubeflow Pipelines (KFP v2) with every component in the spec."""

import json

import pytest

from kubeflow import runner
from pipeline import configs


def test_every_component_is_in_the_compiled_spec(tmp_path):
  output = runner.compile_pipeline(
      image="example.com/sid-ranking:test", pipeline_root="gs://bucket/root", data_root=configs.DATA_ROOT,
      output=str(tmp_path / "spec.json"),
      beam_pipeline_args=runner.beam_args("DataflowRunner", "p", "r", "gs://bucket/tmp"))
  with open(output) as f:
    compiled = json.load(f)
  spec = compiled.get("pipelineSpec", compiled)
  tasks = set(spec["root"]["dag"]["tasks"])
  ranking_steps = {f"{kind}_{date.replace('-', '_')}" for kind in ("RankingTrainer", "Evaluator")
                   for date in configs.RANKING_STEP_DATES}
  assert tasks == {"MovieLensExampleGen", "StatisticsGen", "SchemaGen", "InteractionsSchema",
                   "ExampleValidator", "ItemStatisticsGen", "ItemsSchema", "ItemExampleValidator",
                   "ContentEmbedder", "RQVAETrainer", "SemanticIdAssigner", "RQVAETrainerV0",
                   "SemanticIdAssignerV0", "SidQualityReport", "SidVocabBuilder",
                   "RankingTrainer_Warmup", "Evaluator_Warmup", "Pusher"} | ranking_steps
  executors = spec["deploymentSpec"]["executors"].values()
  assert {e["container"]["image"] for e in executors} == {"example.com/sid-ranking:test"}
  text = json.dumps(spec)
  assert "--runner=DataflowRunner" in text and "--setup_file=/pipeline/setup.py" in text
  assert compiled["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"


def test_dataflow_needs_project_region_and_temp_location():
  with pytest.raises(ValueError, match="--beam_runner DataflowRunner needs --region, --temp_location"):
    runner.beam_args("DataflowRunner", "p", None, None)
