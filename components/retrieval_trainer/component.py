"""RetrievalTrainer: TFX Trainer (GenericExecutor, run_fn) of the TIGER retrieval model over the catalog's
Semantic IDs (models/retrieval).

Example, one continued step on span N, warm-started from the step before and scored on span N first:
  step = RetrievalTrainer(examples=example_gen.outputs['examples'], semantic_ids=assigner.outputs['semantic_ids'],
                          base_model=previous_step.outputs['model'], train_splits=['interactions'],
                          eval_splits=['interactions'], retrieval_config={'d_model': 128})
A SID refresh's remap warm start gives the latest model as `base_model` with the Semantic IDs it was trained
on (`previous_semantic_ids`): run_fn fits its tokens to the new ones (models/retrieval/remap.py).
The executor is RankingTrainer's (components/ranking_trainer/executor.py): it hands run_fn the Semantic
IDs' URI and codebook size, tolerates a span without interactions and records the trained spans on the
model for the span-aware resolvers. The run function is models.retrieval.trainer.run_fn.
"""

import json
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter

from components.ranking_trainer import executor
from formats import artifacts
from models.retrieval.config import RetrievalConfig

RUN_FN = executor.RETRIEVAL_RUN_FN


class RetrievalTrainerSpec(types.ComponentSpec):
  PARAMETERS = standard_component_specs.TrainerSpec.PARAMETERS
  INPUTS = {**standard_component_specs.TrainerSpec.INPUTS,
            executor.SEMANTIC_IDS: ChannelParameter(type=artifacts.SemanticIds),
            executor.PREVIOUS_SEMANTIC_IDS: ChannelParameter(type=artifacts.SemanticIds, optional=True)}
  OUTPUTS = standard_component_specs.TrainerSpec.OUTPUTS


class RetrievalTrainer(base_component.BaseComponent):
  """Trains models/retrieval on `train_splits` (from scratch, or warm-started from `base_model`), after
  scoring `eval_splits` with the incoming model."""

  SPEC_CLASS = RetrievalTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, semantic_ids: types.BaseChannel, train_splits: List[str],
               eval_splits: List[str], retrieval_config: Dict[str, Any],
               base_model: Optional[types.BaseChannel] = None,
               previous_semantic_ids: Optional[types.BaseChannel] = None):
    config = RetrievalConfig.from_dict(retrieval_config)  # refuses unknown settings now, not at run time
    super().__init__(spec=RetrievalTrainerSpec(
        examples=examples, semantic_ids=semantic_ids, base_model=base_model,
        previous_semantic_ids=previous_semantic_ids, run_fn=RUN_FN,
        train_args=trainer_pb2.TrainArgs(splits=train_splits), eval_args=trainer_pb2.EvalArgs(splits=eval_splits),
        custom_config=json.dumps({"retrieval": json.loads(config.to_json())}),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun)))
