"""SidVocabBuilder: SentencePiece vocabularies over Semantic IDs, one per embedding table budget,
learned from the items' impressions in the training spans (Singh et al. 2023, section 3.3).

Example:
  vocab = SidVocabBuilder(semantic_ids=assigner.outputs['semantic_ids'],
                          examples=example_gen.outputs['examples'], items=example_gen.outputs['items'],
                          table_budgets=[1024, 4096, 16384], train_splits=['backfill'])
  # vocab.outputs['vocabulary']: spm_<budget>.model for the ranking model's in-graph tokenizer
  # vocab.outputs['report']: report.json + figure4.png for every adaptation at every budget
The vocabulary is learned once and frozen, like the RQ-VAE: items first impressed later still
tokenize (into shorter pieces, down to single codes), which is the cold-start case.
"""

from typing import List

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from formats import artifacts
from components.sid_vocab_builder import executor
from models.sid_adaptation import tokenizers


class SidVocabBuilderSpec(types.ComponentSpec):
  PARAMETERS = {
      "table_budgets": ExecutionParameter(type=List[int]),
      "train_splits": ExecutionParameter(type=List[str]),
      "max_bigram_rows": ExecutionParameter(type=int),
  }
  INPUTS = {
      "semantic_ids": ChannelParameter(type=artifacts.SemanticIds),
      "examples": ChannelParameter(type=standard_artifacts.Examples),
      "items": ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      "vocabulary": ChannelParameter(type=artifacts.SidVocabulary),
      "report": ChannelParameter(type=artifacts.SidAdaptationReport),
  }


class SidVocabBuilder(base_beam_component.BaseBeamComponent):
  """Counts impressions per item with Beam, then trains one SentencePiece model per table budget."""

  SPEC_CLASS = SidVocabBuilderSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, semantic_ids: types.BaseChannel, examples: types.BaseChannel,
               items: types.BaseChannel, table_budgets: List[int], train_splits: List[str],
               max_bigram_rows: int = tokenizers.DEFAULT_MAX_ROWS):
    if not table_budgets or any(b < 1 for b in table_budgets):
      raise ValueError(f"table_budgets must be positive row counts, got {table_budgets}")
    if not train_splits:
      raise ValueError("train_splits must name at least one split of `examples`")
    super().__init__(spec=SidVocabBuilderSpec(
        semantic_ids=semantic_ids, examples=examples, items=items,
        table_budgets=sorted(set(table_budgets)), train_splits=list(train_splits),
        max_bigram_rows=max_bigram_rows,
        vocabulary=types.Channel(type=artifacts.SidVocabulary),
        report=types.Channel(type=artifacts.SidAdaptationReport)))
