"""SidQualityReport: how good a Semantic-ID assignment is, with FAISS and RQ-KMeans side by side.

Example:
  report = SidQualityReport(embeddings=..., items=..., semantic_ids=assigner.outputs['semantic_ids'],
                            model=rqvae.outputs['model'], semantic_ids_v0=assigner_v0.outputs['semantic_ids'])
Writes report.json, report.html, utilisation.png and prefix_similarity.png: per-level utilisation and
perplexity, unique-SID ratio, reconstruction MSE, the paper's Table 1 (pairwise cosine of items
sharing a prefix, sub-trie sizes), example sub-tries with titles, v0/v1 prefix agreement, and with
`previous_semantic_ids` (the previous refresh's, resolved from ML Metadata) the share of items whose code
changed at each level.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components.sid_quality_report import executor


class SidQualityReportSpec(types.ComponentSpec):
  PARAMETERS = {"seed": ExecutionParameter(type=int, optional=True)}
  INPUTS = {
      "embeddings": ChannelParameter(type=artifacts.ItemEmbeddings),
      "items": ChannelParameter(type=standard_artifacts.Examples),
      "semantic_ids": ChannelParameter(type=artifacts.SemanticIds),
      "model": ChannelParameter(type=artifacts.RQVAEModel),
      "semantic_ids_v0": ChannelParameter(type=artifacts.SemanticIds, optional=True),
      "previous_semantic_ids": ChannelParameter(type=artifacts.SemanticIds, optional=True),
  }
  OUTPUTS = {"report": ChannelParameter(type=artifacts.SidQualityReport)}


class SidQualityReport(base_component.BaseComponent):
  SPEC_CLASS = SidQualityReportSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, embeddings: types.BaseChannel, items: types.BaseChannel,
               semantic_ids: types.BaseChannel, model: types.BaseChannel,
               semantic_ids_v0: Optional[types.BaseChannel] = None,
               previous_semantic_ids: Optional[types.BaseChannel] = None, seed: int = 0):
    super().__init__(spec=SidQualityReportSpec(
        embeddings=embeddings, items=items, semantic_ids=semantic_ids, model=model,
        semantic_ids_v0=semantic_ids_v0, previous_semantic_ids=previous_semantic_ids, seed=seed,
        report=types.Channel(type=artifacts.SidQualityReport)))
