"""TIGER's prefix pieces: the output's candidate rows are the input's prefix rows."""

import numpy as np
import tensorflow as tf

from models.retrieval.config import RetrievalConfig
from models.retrieval.model import TigerModel
from models.retrieval.sid_tokens import BOS, TokenLayout

LAYOUT = TokenLayout(num_levels=2, codebook_size=3, suffix_size=2, user_buckets=4)
CONFIG = RetrievalConfig(encoder_layers=1, decoder_layers=1, heads=1, head_dim=4, d_model=8, mlp_dim=8,
                         user_buckets=4, history_length=2, suffix_size=2, prefix_rows=7, prefix_logits=True)


def test_prefix_keys_are_exact_and_rows_wrap_them():
  model = TigerModel(CONFIG, LAYOUT)
  tokens = tf.constant([[LAYOUT.token(0, 2), LAYOUT.token(1, 1), LAYOUT.token(2, 0)]], tf.int64)
  v = LAYOUT.vocabulary_size
  a, b, c = tokens.numpy()[0]
  assert model._prefix_keys(tokens).numpy().tolist() == [[a, a * v + b, (a * v + b) * v + c]]


def test_each_candidate_scores_the_row_of_the_prefix_it_makes():
  model = TigerModel(CONFIG, LAYOUT)
  target = tf.constant([[LAYOUT.token(0, 1), LAYOUT.token(1, 2), LAYOUT.token(2, 1)]], tf.int64)
  decoder = tf.concat([tf.constant([[BOS]], tf.int64), target[:, :-1]], axis=1)
  model({"encoder_tokens": tf.zeros([1, 1 + 2 * LAYOUT.positions], tf.int64), "decoder_tokens": decoder})
  states = tf.random.stateless_normal([1, 3, CONFIG.d_model], seed=[1, 2])
  logits = model._prefix_logits(states, decoder, 0).numpy()[0]
  table = model.prefix_embedding.embeddings.numpy()
  for p in range(3):
    offset, size = LAYOUT.offsets[p], LAYOUT.sizes[p]
    for x in range(offset, offset + size):
      prefix = tf.concat([target[:, :p], tf.constant([[x]], tf.int64)], axis=1)
      row = int(model._prefix_keys(prefix).numpy()[0, -1]) % CONFIG.prefix_rows
      np.testing.assert_allclose(logits[p, x], states.numpy()[0, p] @ table[row], rtol=1e-5)
    others = np.delete(logits[p], np.arange(offset, offset + size))
    assert (others == 0).all()


def test_next_token_logits_are_the_full_decodes_last():
  model = TigerModel(CONFIG, LAYOUT)
  encoder = tf.constant([[LAYOUT.user_offset + 1] + [LAYOUT.token(p, 1) for p in range(3)] * 2], tf.int64)
  memory = model.encode(encoder)
  for t in range(1, LAYOUT.positions + 1):
    decoder = tf.constant([[BOS] + [LAYOUT.token(p, 1) for p in range(t - 1)]], tf.int64)
    full = model.decode(memory, encoder, decoder).numpy()
    np.testing.assert_allclose(model.decode_next(memory, encoder, decoder).numpy(), full[:, -1:], rtol=1e-5)
