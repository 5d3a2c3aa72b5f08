"""SemanticIdAssigner: every item's Semantic ID from a frozen RQ-VAE, with Beam.

Example:
  sids = SemanticIdAssigner(embeddings=embedder.outputs['embeddings'], model=rqvae.outputs['model'])
  # sids.outputs['semantic_ids']: item_id -> L codes + collision suffix (unique per item)

  # A daily run: encodes only the items absent from the refresh's SIDs, which it keeps unchanged.
  daily = SemanticIdAssigner(embeddings=daily_embedder.outputs['embeddings'], model=refresh_model,
                             previous_semantic_ids=refresh_sids)
New items get their SID from the same frozen model, with no retraining (cold start on day one).
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components.semantic_id_assigner import executor


class SemanticIdAssignerSpec(types.ComponentSpec):
  PARAMETERS = {"batch_size": ExecutionParameter(type=int)}
  INPUTS = {
      "embeddings": ChannelParameter(type=artifacts.ItemEmbeddings),
      "model": ChannelParameter(type=artifacts.RQVAEModel),
      "previous_semantic_ids": ChannelParameter(type=artifacts.SemanticIds, optional=True),
  }
  OUTPUTS = {"semantic_ids": ChannelParameter(type=artifacts.SemanticIds)}


class SemanticIdAssigner(base_beam_component.BaseBeamComponent):
  """Encodes all item embeddings with the frozen RQ-VAE; colliding items get distinct suffixes.

  With `previous_semantic_ids` (from the same RQ-VAE), only the items absent from them are encoded;
  every previous SID is kept and a new item sharing codes with old ones gets the next suffix.
  """

  SPEC_CLASS = SemanticIdAssignerSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, embeddings: types.BaseChannel, model: types.BaseChannel, batch_size: int = 1024,
               previous_semantic_ids: Optional[types.BaseChannel] = None):
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    super().__init__(spec=SemanticIdAssignerSpec(
        embeddings=embeddings, model=model, previous_semantic_ids=previous_semantic_ids,
        batch_size=batch_size,
        semantic_ids=types.Channel(type=artifacts.SemanticIds)))
