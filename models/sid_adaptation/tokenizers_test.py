import numpy as np
import pytest
import tensorflow as tf

from models.sid_adaptation import spm, tokenizers

L, K = 3, 8


def _corpus(n=300, seed=0):
  """Clustered SIDs (a few popular coarse codes) with Zipf-like impression counts."""
  rng = np.random.default_rng(seed)
  coarse = rng.integers(0, 3, n)
  codes = np.stack([coarse, (coarse * 3 + rng.integers(0, 2, n)) % K, rng.integers(0, K, n)], axis=1)
  return np.arange(1, n + 1), codes, rng.zipf(1.6, n).clip(max=200)


@pytest.fixture(scope="module")
def spm_model():
  _, codes, weights = _corpus()
  return spm.train(codes, weights, L, K, vocab_size=60)


def _pieces(tokenizer, ids, codes):
  return tokenizer(tf.constant(ids), tf.constant(codes)).to_list()


def _all_codes():
  grid = np.stack(np.meshgrid(*[np.arange(K)] * L, indexing="ij"), -1).reshape(-1, L)
  return np.arange(1, len(grid) + 1), grid


def _round_trip(tokenizer, ids, codes):
  for row, pieces in zip(codes, _pieces(tokenizer, ids, codes)):
    spelled = [pair for p in pieces for pair in tokenizer.piece_codes(p)]
    assert spelled == list(enumerate(row.tolist()))


def test_unigram_is_one_row_per_level_and_code():
  tokenizer = tokenizers.create("unigram", L, K)
  assert tokenizer.num_rows == 24
  assert _pieces(tokenizer, [1, 2], [[0, 0, 0], [7, 1, 5]]) == [[0, 8, 16], [7, 9, 21]]
  _round_trip(tokenizer, *_all_codes())


def test_bigram_with_odd_levels_keeps_the_last_code_as_a_unigram_block():
  tokenizer = tokenizers.create("bigram", L, K)
  assert tokenizer.num_rows == K * K + K
  assert _pieces(tokenizer, [1], [[7, 1, 5]]) == [[7 * K + 1, K * K + 5]]
  _round_trip(tokenizer, *_all_codes())
  even = tokenizers.create("bigram", 4, K)
  assert even.num_rows == 2 * K * K
  assert _pieces(even, [1], [[1, 2, 3, 4]]) == [[1 * K + 2, K * K + 3 * K + 4]]


def test_bigram_refuses_a_table_above_the_memory_cap():
  with pytest.raises(ValueError, match=r"needs 16,777,216 rows \(4 x 2048\^2\), above max_rows=4,194,304"):
    tokenizers.create("bigram", 8, 2048)
  assert tokenizers.create("bigram", 8, 2048, max_rows=1 << 25).num_rows == 4 * 2048 ** 2


def test_in_graph_spm_equals_the_sentencepiece_library_for_every_sid(spm_model):
  tokenizer = tokenizers.create("spm", L, K, spm_model=spm_model)
  ids, codes = _all_codes()  # every possible SID, impressed or not
  in_graph = _pieces(tokenizer, ids, codes)
  assert in_graph == spm.library_pieces(spm_model, codes, K)
  assert all(0 < p < tokenizer.num_rows for pieces in in_graph for p in pieces)  # never <unk>
  assert max(len(p) for p in in_graph) == L and min(len(p) for p in in_graph) == 1
  _round_trip(tokenizer, ids, codes)


def test_spm_gives_frequent_sids_fewer_pieces(spm_model):
  ids, codes, weights = _corpus()
  lengths = np.array([len(p) for p in _pieces(tokenizers.create("spm", L, K, spm_model=spm_model), ids, codes)])
  head = weights >= np.quantile(weights, 0.9)
  assert lengths[head].mean() < lengths[~head].mean()


def test_spm_inside_a_saved_model_matches(tmp_path, spm_model):
  tokenizer = tokenizers.create("spm", L, K, spm_model=spm_model)
  module = tf.Module()
  module.tokenizer = tokenizer
  module.pieces = tf.function(lambda codes: tokenizer(tf.zeros([tf.shape(codes)[0]], tf.int64), codes).to_tensor(-1),
                              input_signature=[tf.TensorSpec([None, L], tf.int64)])
  tf.saved_model.save(module, str(tmp_path))
  ids, codes = _all_codes()
  restored = tf.saved_model.load(str(tmp_path)).pieces(tf.constant(codes)).numpy()
  assert [[p for p in row if p >= 0] for row in restored.tolist()] == spm.library_pieces(spm_model, codes, K)


def test_spm_vocabulary_must_hold_every_symbol():
  _, codes, weights = _corpus()
  with pytest.raises(ValueError, match="vocabulary size 20 is below the 25 rows needed for 24 distinct"):
    spm.train(codes, weights, L, K, vocab_size=20)
  with pytest.raises(ValueError, match="no impressed Semantic ID"):
    spm.train(codes, np.zeros(len(codes)), L, K, vocab_size=60)
  with pytest.raises(ValueError, match="more than the 65534"):
    spm.check_levels(8, 10000)


def test_prefix_ngram_hashes_each_prefix_and_shares_rows_by_prefix():
  tokenizer = tokenizers.create("prefix_ngram", L, K, num_rows=1000)
  a, b, c = _pieces(tokenizer, [1, 2, 3], [[1, 2, 3], [1, 2, 4], [5, 2, 3]])
  assert len(a) == L and a[:2] == b[:2] and a[2] != b[2]
  assert a[0] != c[0] and all(0 <= p < 1000 for p in a + b + c)
  assert tokenizer.piece_codes(a[0]) is None


def test_random_hash_ignores_codes_and_is_deterministic():
  tokenizer = tokenizers.create("random_hash", L, K, num_rows=50)
  first = _pieces(tokenizer, np.arange(1, 200), np.zeros((199, L), np.int64))
  assert all(len(p) == 1 and 0 <= p[0] < 50 for p in first)
  assert first == tokenizer(tf.constant(np.arange(1, 200)), None).to_list()
  assert len({p[0] for p in first}) > 40


@pytest.mark.parametrize("kind", ["unigram", "bigram", "prefix_ngram", "spm"])
def test_invalid_codes_are_refused(kind, spm_model):
  tokenizer = tokenizers.create(kind, L, K, num_rows=100, spm_model=spm_model)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"code outside \[0, 8\)"):
    tokenizer(tf.constant([1]), tf.constant([[0, 8, 1]]))
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"code outside \[0, 8\)"):
    tokenizer(tf.constant([1]), tf.constant([[0, -1, 1]]))
  with pytest.raises(ValueError, match="Semantic IDs have 2 codes, the adaptation expects 3"):
    tokenizer(tf.constant([1]), tf.constant([[0, 1]]))
  graph_call = tf.function(lambda codes: tokenizer(tf.constant([1]), codes),
                           input_signature=[tf.TensorSpec([None, None], tf.int64)])
  with pytest.raises(tf.errors.InvalidArgumentError, match="must have 3 codes"):
    graph_call(tf.constant([[0, 1]], tf.int64))


def test_unknown_kind_and_missing_settings_are_refused():
  with pytest.raises(ValueError, match="unknown SID adaptation 'trigram'"):
    tokenizers.create("trigram", L, K)
  with pytest.raises(ValueError, match="needs a table budget"):
    tokenizers.create("prefix_ngram", L, K)
  with pytest.raises(ValueError, match="needs a SentencePiece model"):
    tokenizers.create("spm", L, K)
