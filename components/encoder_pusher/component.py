"""EncoderPusher: TFX's Pusher for the content encoder, which becomes a model of its own on the server.

Example:
  pusher = EncoderPusher(encoder=content_embedder.outputs['encoder'],
                         base_directory='outputs/serving/content_encoder')
The model server serves it beside the ranking model (serving/server.py --model_config_file), and a
client embeds a new item's text with it before rank_with_embeddings (serving/query.py). Kept out of the
ranking model, the encoder's 89 MB are not copied into, loaded with and warmed up with every ranking
version a daily run pushes.

TFX's Pusher takes only the standard Model type, so this component gives TFX's own Pusher executor the
encoder's artifact type (formats.TextEncoderModel, laid out as a Model: the SavedModel under
Format-Serving/). No blessing: the encoder is frozen, checked against reference vectors by its tests.
"""

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts


class EncoderPusherSpec(types.ComponentSpec):
  PARAMETERS = {standard_component_specs.PUSH_DESTINATION_KEY: ExecutionParameter(type=pusher_pb2.PushDestination)}
  INPUTS = {standard_component_specs.MODEL_KEY: ChannelParameter(type=artifacts.TextEncoderModel)}
  OUTPUTS = {standard_component_specs.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel)}


class EncoderPusher(base_component.BaseComponent):
  """Copies the encoder SavedModel to `base_directory`/<unix time>/, saved_model.pb last."""

  SPEC_CLASS = EncoderPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(pusher_executor.Executor)

  def __init__(self, encoder: types.BaseChannel, base_directory: str):
    super().__init__(spec=EncoderPusherSpec(
        model=encoder,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base_directory)),
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
