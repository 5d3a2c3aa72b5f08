"""Interaction tf.Examples -> TIGER's training pairs: (encoder and decoder tokens, the next item's tokens).

Every interaction is one pair: the user and their history (the items before it, oldest first) as input,
the interacted item as target (TIGER's next-item task). Interactions whose item has no nameable Semantic
ID (not in the catalog) are left out of training and counted.

Example:
  batches = dataset(files, item_tokens, layout, config, shuffle_seed=0)
  model.fit(batches)
"""

from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from formats import interaction_features as fields
from models.ranking import model as ranking
from models.retrieval.config import RetrievalConfig
from models.retrieval.model import DECODER_TOKENS, ENCODER_TOKENS
from models.retrieval.sid_tokens import ItemTokens, TokenLayout, decoder_inputs, encoder_tokens

SPEC = {name: fields.MODEL_SPEC[name] for name in (fields.ITEM_ID, fields.HISTORY, fields.USER_ID)}
EVALUATION_SPEC = {**SPEC, fields.ITEM_SEGMENT: fields.EVALUATION_SPEC[fields.ITEM_SEGMENT],
                   fields.LABEL: fields.TRAINING_SPEC[fields.LABEL]}
NEW_ITEM_SEGMENT = b"cold_start"  # components/span_example_gen/features.py: first seen in the example's span


def pairs(features: Dict[str, tf.Tensor], item_tokens: ItemTokens, layout: TokenLayout, history_length: int
          ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
  """One parsed batch -> (model inputs, [B', P] targets) over its rows with a nameable item."""
  keep = item_tokens.rows(features[fields.ITEM_ID]) >= 0
  history = fields.ragged(features[fields.HISTORY])
  encoder = encoder_tokens(item_tokens, layout, tf.ragged.boolean_mask(history, keep),
                           tf.boolean_mask(features[fields.USER_ID], keep), history_length)
  decoder, targets = decoder_inputs(item_tokens(tf.boolean_mask(features[fields.ITEM_ID], keep)))
  return {ENCODER_TOKENS: encoder, DECODER_TOKENS: decoder}, targets


def dataset(files, item_tokens: ItemTokens, layout: TokenLayout, config: RetrievalConfig,
            shuffle_seed: Optional[int] = None, cache: bool = False, keep: Optional[np.ndarray] = None
            ) -> tf.data.Dataset:
  """Training pairs of `files`' interactions (those `keep` marks, in ranking.dataset's order, if given)."""
  batches = ranking.dataset(files, config.batch_size, shuffle_seed=shuffle_seed, features=SPEC, cache=cache,
                            keep=keep)
  return (batches.map(lambda f: pairs(f, item_tokens, layout, config.history_length),
                      num_parallel_calls=tf.data.AUTOTUNE)
          .filter(lambda inputs, targets: tf.shape(targets)[0] > 0)
          .prefetch(tf.data.AUTOTUNE))
