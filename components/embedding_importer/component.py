"""EmbeddingImporter: precomputed item embeddings (as the paper's video embeddings) -> ItemEmbeddings.

Example:
  importer = EmbeddingImporter(items=example_gen.outputs['items'],
                               embeddings_path='gs://bucket/item_vectors.npz', dim=256)
The file is an .npz with `item_ids` [N] and `embeddings` [N, D]. Wrong dimension, NaN/Inf, all-zero
vectors, duplicate ids, ids unknown to the corpus and corpus items without a vector are refused
with an error naming the items; nothing is published then.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components import fingerprint
from components.embedding_importer import executor


class EmbeddingImporterSpec(types.ComponentSpec):
  PARAMETERS = {
      "embeddings_path": ExecutionParameter(type=str),
      "input_fingerprint": ExecutionParameter(type=str),
      "dim": ExecutionParameter(type=int, optional=True),
  }
  INPUTS = {"items": ChannelParameter(type=standard_artifacts.Examples)}
  OUTPUTS = {"embeddings": ChannelParameter(type=artifacts.ItemEmbeddings)}


class EmbeddingImporter(base_component.BaseComponent):
  """Validates an .npz of precomputed item embeddings against the item corpus."""

  SPEC_CLASS = EmbeddingImporterSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, items: types.BaseChannel, embeddings_path: str, dim: Optional[int] = None):
    super().__init__(spec=EmbeddingImporterSpec(
        items=items, embeddings_path=embeddings_path,
        input_fingerprint=fingerprint.files_fingerprint([embeddings_path]), dim=dim,
        embeddings=types.Channel(type=artifacts.ItemEmbeddings)))
