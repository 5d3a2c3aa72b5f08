"""The retrieval model across a SID refresh: a renumbering keeps every score; merged codes get weighted means."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from models.retrieval import remap, serving
from models.retrieval.config import RetrievalConfig
from models.retrieval.model import TigerModel
from models.retrieval.sid_tokens import SidCatalog

CONFIG = RetrievalConfig(encoder_layers=1, decoder_layers=1, heads=2, head_dim=8, d_model=16, mlp_dim=32,
                         user_buckets=10, history_length=4, suffix_size=1, beam_width=9, dropout=0.0,
                         prefix_rows=1 << 12, prefix_logits=True, cold_start_share=0.0)
IDS = np.arange(101, 110)


def _catalog(renumber=(lambda level, code: code)) -> SidCatalog:
  """Items 101..109: every pair of 2 levels x 3 codes (so every prefix a beam may try is an item's)."""
  codes = np.array([[renumber(0, a), renumber(1, b)] for a, b in itertools.product(range(3), range(3))])
  return SidCatalog(IDS, codes, np.zeros(len(IDS), np.int64), codebook_size=3)


def _model(seed: int = 0) -> TigerModel:
  model = TigerModel(RetrievalConfig(**{**CONFIG.__dict__, "seed": seed}), _catalog().layout(1, CONFIG.user_buckets))
  positions = model.layout.positions
  model({"encoder_tokens": tf.zeros([1, 1 + CONFIG.history_length * positions], tf.int64),
         "decoder_tokens": tf.zeros([1, positions], tf.int64)})
  return model


def _scores(model: TigerModel, catalog: SidCatalog) -> dict:
  """Every item's log-probability (an exhaustive beam) for one user and history."""
  retriever = serving.Retriever(model.encode, model.decode_next, catalog, model.layout, model.config)
  history = [103, 107]
  items, scores = retriever.top_k(tf.ragged.constant([history], tf.int64), tf.constant([4], tf.int64),
                                  k=tf.constant(7), beam=tf.constant(9))
  return dict(zip(items.numpy()[0].tolist(), scores.numpy()[0].tolist()))


def _restored(old: TigerModel) -> TigerModel:
  new = _model(seed=1)
  new.set_weights(old.get_weights())
  return new


def test_fit_over_renumbered_codes_gives_every_item_its_old_score():
  old = _model()
  # Prefix rows must not collide for the renumbering to be exact (a hashed table may merge two prefixes).
  layout = old.layout
  tokens = lambda catalog: catalog.sequences + np.asarray(layout.offsets)[None, :]
  rows = remap.prefix_rows(tokens(_catalog()), layout.vocabulary_size, CONFIG.prefix_rows)
  assert len(np.unique(rows)) == 3 + 9 + 9  # the prefixes of 1, 2 and 3 tokens
  permutations = ([2, 0, 1], [1, 2, 0])
  renumbered = _catalog(lambda level, code: permutations[level][code])
  expected = _scores(old, _catalog())

  new = _restored(old)
  report = remap.remap(new, _catalog(), renumbered, np.arange(9.0))
  assert report == {"items": 9, "tokens": 6, "prefix_rows": 3 + 9 + 9}  # 3 + 3 codes
  got = _scores(new, renumbered)
  assert sorted(got) == sorted(expected)
  np.testing.assert_allclose([got[i] for i in expected], list(expected.values()), rtol=1e-5, atol=1e-6)

  copied = _restored(old)
  assert remap.remap(copied, _catalog(), renumbered, np.zeros(9), method=remap.COPY)["tokens"] == 0
  assert not np.allclose([_scores(copied, renumbered)[i] for i in expected], list(expected.values()), atol=1e-3)


def test_a_code_two_codes_merged_into_starts_from_their_weighted_mean():
  # Level-1 code 2 is gone: its items (107..109) now carry code 1, beside the items that had it (104..106);
  # suffixes keep the SIDs unique.
  merged = SidCatalog(IDS, np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 0], [1, 0], [1, 1], [1, 1], [1, 2]]),
                      np.array([0, 0, 0, 0, 1, 2, 0, 1, 0]), codebook_size=3)
  wide = RetrievalConfig(**{**CONFIG.__dict__, "suffix_size": 3})
  old = TigerModel(wide, _catalog().layout(3, CONFIG.user_buckets))
  new = TigerModel(wide, _catalog().layout(3, CONFIG.user_buckets))
  for model in (old, new):
    model({"encoder_tokens": tf.zeros([1, 1 + CONFIG.history_length * 3], tf.int64),
           "decoder_tokens": tf.zeros([1, 3], tf.int64)})
  new.set_weights(old.get_weights())
  interactions = np.array([0, 0, 0, 3, 3, 3, 1, 1, 1], np.float64)  # the code-1 items, then the code-2 items
  remap.remap(new, _catalog(), merged, interactions)
  layout, before = new.layout, old.token_embedding.embeddings.numpy()
  one, two = layout.token(0, 1), layout.token(0, 2)
  np.testing.assert_allclose(new.token_embedding.embeddings.numpy()[one],
                             (3 * 4 * before[one] + 3 * 2 * before[two]) / (3 * 4 + 3 * 2), rtol=1e-6)
  np.testing.assert_allclose(new.output_layer.bias.numpy()[one],
                             (4 * old.output_layer.bias.numpy()[one] + 2 * old.output_layer.bias.numpy()[two]) / 6,
                             rtol=1e-6)
  # No item carries code 2 now: its rows are kept; nor do the suffix tokens move.
  np.testing.assert_array_equal(new.token_embedding.embeddings.numpy()[two], before[two])
  suffix = slice(layout.offsets[2], layout.offsets[2] + 3)
  np.testing.assert_array_equal(new.token_embedding.embeddings.numpy()[suffix], before[suffix])


def test_refuses_other_codes_and_methods():
  model = _model()
  with pytest.raises(ValueError, match="2 x 3 codes, the refresh.s are 2 x 4; train it from scratch"):
    remap.remap(model, _catalog(), SidCatalog(IDS, _catalog().codes, np.zeros(9), codebook_size=4), np.zeros(9))
  with pytest.raises(ValueError, match="must be one of fit, copy, got 'mean'"):
    remap.remap(model, _catalog(), _catalog(), np.zeros(9), method="mean")
