"""Constrained beam search against brute force, the trie against the catalog, and the exported SavedModel."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from models.retrieval import serving
from models.retrieval.beam_search import sequence_log_probs
from models.retrieval.config import ITEMS, TOKENS, RetrievalConfig
from models.retrieval.model import TigerModel
from models.retrieval.sid_tokens import BOS, SidCatalog, encoder_tokens
from models.retrieval.trie import PrefixTrie

CONFIG = RetrievalConfig(encoder_layers=1, decoder_layers=1, heads=2, head_dim=8, d_model=16, mlp_dim=32,
                         user_buckets=10, history_length=4, suffix_size=3, beam_width=4, dropout=0.0)


def _catalog() -> SidCatalog:
  # 2 levels x 3 codes; items 101..112 over 9 prefixes, two of them shared (suffixes 1 and 2).
  codes = np.array([[a, b] for a, b in itertools.product(range(3), range(3))] + [[0, 1], [2, 2], [2, 2]])
  suffixes = np.array([0] * 9 + [1, 1, 2])
  return SidCatalog(np.arange(101, 113), codes, suffixes, codebook_size=3)


def _retriever(catalog: SidCatalog, seed: int = 0, encoder_input: str = ITEMS, prefix_rows: int = 0,
               prefix_logits: bool = False, trained_items=None, cold_start_share: float = 0.1) -> serving.Retriever:
  config = RetrievalConfig(**{**CONFIG.__dict__, "seed": seed, "encoder_input": encoder_input,
                              "prefix_rows": prefix_rows, "prefix_logits": prefix_logits,
                              "cold_start_share": cold_start_share})
  model = TigerModel(config, catalog.layout(config.suffix_size, config.user_buckets))
  retriever = serving.Retriever(model.encode, model.decode_next, catalog, model.layout, config, trained_items)
  retriever.model = model
  return retriever


def _brute_force(retriever: serving.Retriever, catalog: SidCatalog, history, user) -> np.ndarray:
  """Every catalog item's log-probability for one user."""
  history = tf.ragged.constant([history] * len(catalog.item_ids), tf.int64)
  users = tf.fill([len(catalog.item_ids)], tf.constant(user, tf.int64))
  enc = encoder_tokens(retriever.item_tokens, retriever.layout, history, users, retriever.history_length)
  memory = retriever.encode(enc)

  def next_log_probs(prefixes, position):
    decoder = tf.concat([tf.fill([tf.shape(prefixes)[0], 1], tf.constant(BOS, tf.int64)), prefixes], axis=1)
    offset, size = retriever.layout.offsets[position], retriever.layout.sizes[position]
    return tf.nn.log_softmax(retriever.decode(memory, enc, decoder)[:, -1, offset:offset + size])

  return sequence_log_probs(next_log_probs, tf.constant(catalog.sequences), retriever.layout.offsets).numpy()


def test_trie_holds_exactly_the_catalog():
  catalog = _catalog()
  trie = PrefixTrie.build(catalog.sequences)
  assert trie.items().tolist() == list(range(12))
  assert trie.children([]) == [0, 1, 2]
  assert trie.children([2, 2]) == [0, 1, 2]
  assert trie.children([0, 1]) == [0, 1]
  assert trie.node([1, 1, 1]) == -1
  for row, sequence in enumerate(catalog.sequences):
    assert trie.leaf_rows[trie.node(sequence)] == row


@pytest.mark.parametrize("seed,encoder_input,prefix_rows,prefix_logits", [
    (0, ITEMS, 0, False), (1, ITEMS, 0, False), (2, TOKENS, 0, False), (3, ITEMS, 50, True), (4, TOKENS, 50, False)])
def test_wide_beam_returns_exactly_the_brute_force_top(seed, encoder_input, prefix_rows, prefix_logits):
  catalog = _catalog()
  retriever = _retriever(catalog, seed, encoder_input, prefix_rows, prefix_logits)
  history, user = [103, 107], 5
  expected = _brute_force(retriever, catalog, history, user)
  # The widest level has 9 prefixes: a beam of 9 keeps them all, so the search is exhaustive.
  items, scores = retriever.top_k(tf.ragged.constant([history], tf.int64), tf.constant([user], tf.int64),
                                  k=tf.constant(8), beam=tf.constant(9))
  unseen = [i for i in range(12) if catalog.item_ids[i] not in history]
  order = sorted(unseen, key=lambda i: -expected[i])[:8]
  assert items.numpy()[0].tolist() == catalog.item_ids[order].tolist()
  np.testing.assert_allclose(scores.numpy()[0], expected[order], rtol=1e-5)


def test_narrow_beam_returns_valid_items_with_their_exact_scores():
  catalog = _catalog()
  retriever = _retriever(catalog)
  expected = _brute_force(retriever, catalog, [], 0)
  items, scores = retriever.top_k(tf.ragged.constant([[]], tf.int64), tf.constant([0], tf.int64),
                                  k=tf.constant(3), beam=tf.constant(2))
  found = items.numpy()[0] >= 0  # a beam of 2 may reach fewer than 3 items: the rest is padding
  assert found.any() and (scores.numpy()[0][~found] == -np.inf).all()
  rows = [int(np.flatnonzero(catalog.item_ids == i)[0]) for i in items.numpy()[0][found]]
  np.testing.assert_allclose(scores.numpy()[0][found], expected[rows], rtol=1e-5)
  assert list(scores.numpy()[0]) == sorted(scores.numpy()[0], reverse=True)


def test_k_beyond_the_catalog_returns_every_unseen_item_once():
  catalog = _catalog()
  retriever = _retriever(catalog)
  result = retriever.retrieve(tf.constant([101, 112, 999], tf.int64), tf.constant(3, tf.int64),
                              tf.constant(50, tf.int64))
  assert sorted(result[serving.ITEMS].numpy().tolist()) == list(range(102, 112))


@pytest.mark.parametrize("cold_start_share,cold_found", [(0.25, 2), (0.5, 3), (0.0, 0)])
def test_cold_items_take_their_share_of_k_by_their_own_beam_search(cold_start_share, cold_found):
  catalog = _catalog()
  cold = [102, 106, 111]  # never trained on: (0, 1, 0), (1, 2, 0), (2, 2, 1)
  retriever = _retriever(catalog, seed=5, prefix_rows=50, prefix_logits=True, cold_start_share=cold_start_share,
                         trained_items=[i for i in catalog.item_ids if i not in cold])
  history, user = [103, 111], 5
  expected = _brute_force(retriever, catalog, history, user)
  items, scores = retriever.top_k(tf.ragged.constant([history], tf.int64), tf.constant([user], tf.int64),
                                  k=tf.constant(6), beam=tf.constant(9))
  # ceil(share x 6) slots for the cold items not in the history (2 of them), the best trained items
  # in the rest, all ordered by log-probability.
  by_score = lambda ids: sorted(ids, key=lambda i: -expected[i - 101])
  unseen_cold = by_score([i for i in cold if i not in history])[:cold_found]
  warm = by_score([i for i in catalog.item_ids if i not in cold + history])[:6 - len(unseen_cold)]
  assert items.numpy()[0].tolist() == by_score(unseen_cold + warm)
  np.testing.assert_allclose(scores.numpy()[0], expected[np.array(by_score(unseen_cold + warm)) - 101], rtol=1e-5)
  assert retriever.cold_items == 3


def test_every_item_cold_leaves_only_the_cold_share():
  catalog = _catalog()
  retriever = _retriever(catalog, trained_items=[], cold_start_share=0.3)
  items, _ = retriever.top_k(tf.ragged.constant([[]], tf.int64), tf.constant([0], tf.int64), k=tf.constant(5))
  assert (items.numpy()[0] >= 0).tolist() == [True, True, False, False, False]


@pytest.mark.parametrize("prefix_rows", [0, 50])
def test_export_serves_the_retriever_and_takes_a_new_catalog(tmp_path, prefix_rows):
  catalog = _catalog()
  retriever = _retriever(catalog, prefix_rows=prefix_rows, prefix_logits=bool(prefix_rows))
  serving.export(retriever.model, catalog, str(tmp_path / "1"), trained_items=catalog.item_ids)
  retrieve = tf.saved_model.load(str(tmp_path / "1")).signatures[serving.RETRIEVE]
  request = dict(history=tf.constant([103], tf.int64), user_id=tf.constant(4, tf.int64), k=tf.constant(5, tf.int64))
  served = retrieve(**request)
  live = retriever.retrieve(**request)
  assert served[serving.ITEMS].numpy().tolist() == live[serving.ITEMS].numpy().tolist()
  np.testing.assert_allclose(served[serving.SCORES].numpy(), live[serving.SCORES].numpy(), rtol=1e-5)
  with pytest.raises(tf.errors.InvalidArgumentError, match="k must be > 0"):
    retrieve(**{**request, "k": tf.constant(0, tf.int64)})
  # A new item (its Semantic ID new to the model) is retrievable through the loaded functions.
  grown = SidCatalog(np.append(catalog.item_ids, 500), np.vstack([catalog.codes, [[1, 1]]]),
                     np.append(catalog.suffixes, 1), codebook_size=3)
  reloaded = serving.load(str(tmp_path / "1"), grown)
  assert reloaded.cold_items == 1  # the export's trained items came with it: item 500 is cold
  everything = reloaded.retrieve(tf.constant([], tf.int64), tf.constant(0, tf.int64), tf.constant(20, tf.int64))
  assert sorted(everything[serving.ITEMS].numpy().tolist()) == sorted(grown.item_ids.tolist())
  top = reloaded.retrieve(tf.constant([], tf.int64), tf.constant(0, tf.int64), tf.constant(1, tf.int64))
  assert top[serving.ITEMS].numpy().tolist() == [500]  # its ceil(0.1 x 1) slot
  (tmp_path / "1" / serving.EXTRA / serving.TRAINED_ITEMS_FILE).unlink()  # an export from before trained items
  with pytest.raises(ValueError, match="run a SID refresh"):
    serving.load(str(tmp_path / "1"), grown)
