"""RQVAETrainer: item embeddings -> a frozen RQ-VAE (SavedModel with `encode` and `decode`).

Example:
  rqvae_v1 = RQVAETrainer(embeddings=embedder.outputs['embeddings'], items=example_gen.outputs['items'],
                          config={'num_levels': 3, 'codebook_size': 256})
  # Appendix A.2 of Singh et al. 2023: v0 sees only items first rated before a cut-off.
  rqvae_v0 = RQVAETrainer(..., train_items_first_seen_before=config.rqvae_v0_cutoff,
                          version='v0').with_id('RQVAETrainerV0')
  # Stable codes: a refresh starts from the previous refresh's RQ-VAE (resolved from ML Metadata).
  rqvae = RQVAETrainer(..., base_model=previous.outputs['sid_encoder'])
The model artifact records loss, per-level utilisation and perplexity in ML Metadata, and holds
training_history.json with every epoch's figures.
"""

import json
from typing import Any, Dict, Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components.rqvae_trainer import executor


class RQVAETrainerSpec(types.ComponentSpec):
  PARAMETERS = {
      "config": ExecutionParameter(type=str),
      "train_items_first_seen_before": ExecutionParameter(type=str, optional=True),
      "version": ExecutionParameter(type=str),
  }
  INPUTS = {
      "embeddings": ChannelParameter(type=artifacts.ItemEmbeddings),
      "items": ChannelParameter(type=standard_artifacts.Examples),
      "base_model": ChannelParameter(type=artifacts.RQVAEModel, optional=True),
  }
  OUTPUTS = {"model": ChannelParameter(type=artifacts.RQVAEModel)}


class RQVAETrainer(base_component.BaseComponent):
  """Trains the RQ-VAE of models/rqvae on all (or all early) items and exports it frozen."""

  SPEC_CLASS = RQVAETrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, embeddings: types.BaseChannel, items: types.BaseChannel,
               config: Optional[Dict[str, Any]] = None,
               train_items_first_seen_before: Optional[str] = None, version: str = "v1",
               base_model: Optional[types.BaseChannel] = None):
    config_json = json.dumps(config or {}, sort_keys=True)
    executor.config_from(config_json, input_dim=1)  # fails now, not at run time, on unknown keys
    super().__init__(spec=RQVAETrainerSpec(
        embeddings=embeddings, items=items, base_model=base_model, config=config_json,
        train_items_first_seen_before=train_items_first_seen_before, version=version,
        model=types.Channel(type=artifacts.RQVAEModel)))
