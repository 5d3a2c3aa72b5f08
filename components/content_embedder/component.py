"""ContentEmbedder: item content text -> all-MiniLM-L6-v2 embeddings (TensorFlow), with Beam.

Example:
  embedder = ContentEmbedder(items=example_gen.outputs['items'])
  # embedder.outputs['embeddings']: ItemEmbeddings, one 384-d unit vector per item
  # embedder.outputs['encoder']: the encoder SavedModel (string -> 384 floats) under Format-Serving/
"""

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components.content_embedder import executor


class ContentEmbedderSpec(types.ComponentSpec):
  PARAMETERS = {"batch_size": ExecutionParameter(type=int)}
  INPUTS = {"items": ChannelParameter(type=standard_artifacts.Examples)}
  OUTPUTS = {
      "embeddings": ChannelParameter(type=artifacts.ItemEmbeddings),
      "encoder": ChannelParameter(type=standard_artifacts.Model),
  }


class ContentEmbedder(base_beam_component.BaseBeamComponent):
  """Embeds each item's `content_text` with the frozen sentence encoder of models/content_encoder."""

  SPEC_CLASS = ContentEmbedderSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, items: types.BaseChannel, batch_size: int = 64):
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    super().__init__(spec=ContentEmbedderSpec(
        items=items, batch_size=batch_size,
        embeddings=types.Channel(type=artifacts.ItemEmbeddings),
        encoder=types.Channel(type=standard_artifacts.Model)))
