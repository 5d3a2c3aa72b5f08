"""RetrievalEvaluator: full-catalog Recall/NDCG of the latest retrieval model against the blessed one on a
span, and a ModelBlessing by Recall@10 (executor.py).

Example:
  evaluator = RetrievalEvaluator(examples=example_gen.outputs['examples'], model=latest.outputs['model'],
                                 baseline_model=blessed.outputs['model'], semantic_ids=assigner.outputs['semantic_ids'],
                                 min_recall=0.0, max_recall_regression=0.01, min_examples=50)
  Pusher(model=latest.outputs['model'], model_blessing=evaluator.outputs['blessing'], ...)
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats.artifacts import SEMANTIC_IDS
from components.retrieval_evaluator import executor
from formats import artifacts


class RetrievalEvaluatorSpec(types.ComponentSpec):
  PARAMETERS = {executor.SPLIT: ExecutionParameter(type=str), executor.MIN_RECALL: ExecutionParameter(type=float),
                executor.MAX_REGRESSION: ExecutionParameter(type=float),
                executor.MIN_EXAMPLES: ExecutionParameter(type=int),
                executor.RECOMMENDER_BASE: ExecutionParameter(type=str, optional=True)}
  INPUTS = {executor.EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
            executor.MODEL: ChannelParameter(type=standard_artifacts.Model),
            executor.BASELINE_MODEL: ChannelParameter(type=standard_artifacts.Model, optional=True),
            SEMANTIC_IDS: ChannelParameter(type=artifacts.SemanticIds)}
  OUTPUTS = {executor.BLESSING: ChannelParameter(type=standard_artifacts.ModelBlessing),
             executor.EVALUATION: ChannelParameter(type=standard_artifacts.ModelEvaluation)}


class RetrievalEvaluator(base_component.BaseComponent):
  """Blesses `model` when its Recall@10 on `split` is at least `min_recall` and at most
  `max_recall_regression` below `baseline_model`'s, on at least `min_examples` interactions. With
  `recommender_base_directory`, also scores the served two-stage model on the span's liked interactions."""

  SPEC_CLASS = RetrievalEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel, semantic_ids: types.BaseChannel,
               split: str, min_recall: float, max_recall_regression: float, min_examples: int,
               baseline_model: Optional[types.BaseChannel] = None, recommender_base_directory: str = ""):
    super().__init__(spec=RetrievalEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model, semantic_ids=semantic_ids, split=split,
        min_recall=min_recall, max_recall_regression=max_recall_regression, min_examples=min_examples,
        recommender_base_directory=recommender_base_directory,
        blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation)))
