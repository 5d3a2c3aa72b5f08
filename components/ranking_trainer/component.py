"""RankingTrainer: TFX Trainer (GenericExecutor, run_fn) that also takes the frozen SID artifacts.

A SID refresh's remap warm start gives the latest model as `base_model` with the SIDs and vocabulary it was
trained on (`previous_semantic_ids`, `previous_vocabulary`): run_fn maps it onto the new ones.

Example, one continuous-training step on span N, warm-started from the step before:
  step = RankingTrainer(examples=example_gen.outputs['examples'], semantic_ids=..., vocabulary=...,
                        embeddings=..., sid_encoder=rqvae.outputs['model'],
                        base_model=previous_step.outputs['model'],
                        train_splits=['span_N'], eval_splits=['span_N+1'],
                        ranking_config={'representation': 'spm', 'table_rows': 4096})
The run function is models.ranking.trainer.run_fn. The Semantic IDs, vocabulary, content
embeddings and the frozen RQ-VAE (`sid_encoder`) are inputs like the examples, so lineage in ML
Metadata records which frozen model every ranking model was trained and exported with; their URIs
reach run_fn in `fn_args.custom_config`. The RQ-VAE goes into the serving model, for items unknown to
its catalog; the content encoder is served on its own (components/encoder_pusher).
"""

import json
from typing import Any, Dict, List, Optional

from google.protobuf import message
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import proto_utils

from formats import artifacts
from components.ranking_trainer import executor
from models.ranking.config import RankingConfig

RUN_FN = "models.ranking.trainer.run_fn"


class RankingTrainerSpec(types.ComponentSpec):
  PARAMETERS = standard_component_specs.TrainerSpec.PARAMETERS
  INPUTS = {
      **standard_component_specs.TrainerSpec.INPUTS,
      executor.SEMANTIC_IDS: ChannelParameter(type=artifacts.SemanticIds),
      executor.VOCABULARY: ChannelParameter(type=artifacts.SidVocabulary),
      executor.EMBEDDINGS: ChannelParameter(type=artifacts.ItemEmbeddings),
      executor.SID_ENCODER: ChannelParameter(type=artifacts.RQVAEModel),
      executor.FEATURE_STATE: ChannelParameter(type=artifacts.FeatureState, optional=True),
      # With a base model trained on other SIDs (a SID refresh's remap warm start): its SIDs and vocabulary.
      executor.PREVIOUS_SEMANTIC_IDS: ChannelParameter(type=artifacts.SemanticIds, optional=True),
      executor.PREVIOUS_VOCABULARY: ChannelParameter(type=artifacts.SidVocabulary, optional=True),
  }
  OUTPUTS = standard_component_specs.TrainerSpec.OUTPUTS


class RankingTrainer(base_component.BaseComponent):
  """Trains models/ranking on `train_splits`, warm-started from `base_model` when given."""

  SPEC_CLASS = RankingTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, semantic_ids: types.BaseChannel,
               vocabulary: types.BaseChannel, embeddings: types.BaseChannel, sid_encoder: types.BaseChannel,
               train_splits: List[str], eval_splits: List[str], ranking_config: Dict[str, Any],
               base_model: Optional[types.BaseChannel] = None,
               feature_state: Optional[types.BaseChannel] = None,
               previous_semantic_ids: Optional[types.BaseChannel] = None,
               previous_vocabulary: Optional[types.BaseChannel] = None):
    config = RankingConfig.from_dict(ranking_config)  # refuses unknown settings now, not at run time
    super().__init__(spec=RankingTrainerSpec(
        examples=examples, semantic_ids=semantic_ids, vocabulary=vocabulary, embeddings=embeddings,
        sid_encoder=sid_encoder, feature_state=feature_state, base_model=base_model,
        previous_semantic_ids=previous_semantic_ids, previous_vocabulary=previous_vocabulary,
        run_fn=RUN_FN,
        train_args=trainer_pb2.TrainArgs(splits=train_splits),
        eval_args=trainer_pb2.EvalArgs(splits=eval_splits),
        custom_config=json.dumps({"ranking": json.loads(config.to_json())}),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun)))


def executor_properties(component: RankingTrainer) -> Dict[str, Any]:
  """exec_properties as an orchestrator hands them to the executor (protos as JSON), for calling
  the executor's Do() directly (tests, bench)."""
  return {key: proto_utils.proto_to_json(value) if isinstance(value, message.Message) else value
          for key, value in component.exec_properties.items()}
