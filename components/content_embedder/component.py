"""ContentEmbedder: item content text -> all-MiniLM-L6-v2 embeddings (TensorFlow), with Beam.

Example:
  embedder = ContentEmbedder(items=example_gen.outputs['items'])
  # embedder.outputs['embeddings']: ItemEmbeddings, one 384-d unit vector per item
  # embedder.outputs['encoder']: the encoder SavedModel (string -> 384 floats) under Format-Serving/

  # A daily run: embeds only the items absent from the refresh's embeddings and reuses its encoder.
  daily = ContentEmbedder(items=daily_example_gen.outputs['items'],
                          previous_embeddings=refresh_embeddings, export_encoder=False)
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components.content_embedder import executor


class ContentEmbedderSpec(types.ComponentSpec):
  PARAMETERS = {
      "batch_size": ExecutionParameter(type=int, optional=True),
      "export_encoder": ExecutionParameter(type=int),
  }
  INPUTS = {
      "items": ChannelParameter(type=standard_artifacts.Examples),
      "previous_embeddings": ChannelParameter(type=artifacts.ItemEmbeddings, optional=True),
      "frozen_encoder": ChannelParameter(type=artifacts.TextEncoderModel, optional=True),
  }
  OUTPUTS = {
      "embeddings": ChannelParameter(type=artifacts.ItemEmbeddings),
      "encoder": ChannelParameter(type=artifacts.TextEncoderModel),
  }


class ContentEmbedder(base_beam_component.BaseBeamComponent):
  """Embeds each item's `content_text` with the frozen sentence encoder of models/content_encoder.

  With `previous_embeddings`, only the items absent from them are embedded and the output holds the
  previous vectors unchanged plus the new ones. With `export_encoder=False` the encoder SavedModel
  is not written: the `encoder` output stays empty, with custom property `exported` = 0. With
  `frozen_encoder` (the SID refresh's `encoder` output), items are embedded by that SavedModel.
  """

  SPEC_CLASS = ContentEmbedderSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, items: types.BaseChannel, batch_size: Optional[int] = None,
               previous_embeddings: Optional[types.BaseChannel] = None, export_encoder: bool = True,
               frozen_encoder: Optional[types.BaseChannel] = None):
    # None: the encoder's benchmarked content_encoder.DEFAULT_BATCH_SIZE.
    if batch_size is not None and batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    super().__init__(spec=ContentEmbedderSpec(
        items=items, previous_embeddings=previous_embeddings, frozen_encoder=frozen_encoder,
        batch_size=batch_size,
        export_encoder=int(export_encoder),
        embeddings=types.Channel(type=artifacts.ItemEmbeddings),
        encoder=types.Channel(type=artifacts.TextEncoderModel)))
