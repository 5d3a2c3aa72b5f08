"""RecommenderPusher: pushes the two-stage `recommend` model (TIGER retrieval, then the ranker) assembled
from the served ranking and retrieval versions and the latest catalog (executor.py).

Example, after the day's Pushers:
  RecommenderPusher(semantic_ids=assigner.outputs['semantic_ids'], embeddings=embedder.outputs['embeddings'],
                    ranking_push=ranking_pusher.outputs['pushed_model'],
                    retrieval_push=retrieval_pusher.outputs['pushed_model'],
                    ranking_base_directory='serving/sid_ranking', retrieval_base_directory='serving/sid_retrieval',
                    base_directory='serving/sid_recommend')
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats.artifacts import EMBEDDINGS, SEMANTIC_IDS
from components.recommender_pusher import executor
from formats import artifacts
from models.recommend.two_stage import NUM_CANDIDATES

RANKING_PUSH, RETRIEVAL_PUSH = "ranking_push", "retrieval_push"


class RecommenderPusherSpec(types.ComponentSpec):
  PARAMETERS = {executor.RANKING_BASE: ExecutionParameter(type=str),
                executor.RETRIEVAL_BASE: ExecutionParameter(type=str),
                executor.BASE: ExecutionParameter(type=str), executor.NUM_CANDIDATES: ExecutionParameter(type=int)}
  INPUTS = {SEMANTIC_IDS: ChannelParameter(type=artifacts.SemanticIds),
            EMBEDDINGS: ChannelParameter(type=artifacts.ItemEmbeddings, optional=True),
            # Only for order: the day's pushes land before the assembly reads the served versions.
            RANKING_PUSH: ChannelParameter(type=standard_artifacts.PushedModel, optional=True),
            RETRIEVAL_PUSH: ChannelParameter(type=standard_artifacts.PushedModel, optional=True)}
  OUTPUTS = {executor.PUSHED_MODEL: ChannelParameter(type=standard_artifacts.PushedModel)}


class RecommenderPusher(base_component.BaseComponent):
  """Pushes `recommend` over the newest versions under ranking_base_directory and retrieval_base_directory."""

  SPEC_CLASS = RecommenderPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, semantic_ids: types.BaseChannel, ranking_base_directory: str, retrieval_base_directory: str,
               base_directory: str, embeddings: Optional[types.BaseChannel] = None,
               ranking_push: Optional[types.BaseChannel] = None, retrieval_push: Optional[types.BaseChannel] = None,
               num_candidates: int = NUM_CANDIDATES):
    super().__init__(spec=RecommenderPusherSpec(
        semantic_ids=semantic_ids, embeddings=embeddings, ranking_push=ranking_push, retrieval_push=retrieval_push,
        ranking_base_directory=ranking_base_directory, retrieval_base_directory=retrieval_base_directory,
        base_directory=base_directory, num_candidates=num_candidates,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
