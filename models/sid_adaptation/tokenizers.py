"""SID adaptations: an item's Semantic ID -> piece ids, each a row of one embedding table.

Singh et al. 2023 (arXiv 2306.08121), section 3.3, compare ways to turn the L codes of a Semantic
ID into embedding lookups whose vectors are summed into the item representation: N-grams of codes
(unigram, bigram) and a SentencePiece vocabulary (SPM) learned from impressions, against random
hashing of item ids; Zheng et al. 2025 (Meta, arXiv 2504.02137) hash every SID prefix instead.
Every adaptation here is a `tf.Module` that runs inside the TensorFlow graph, so the exported
ranking model turns SIDs into pieces itself and training and serving cannot drift.

Example:
  tokenizer = create("spm", num_levels=3, codebook_size=256, spm_model=model_bytes)
  pieces = tokenizer(item_ids, codes)       # tf.RaggedTensor [batch, (pieces)], ids in [0, num_rows)
  table = tf.keras.layers.Embedding(tokenizer.num_rows, 64)
  item_vectors = tf.reduce_sum(table(pieces), axis=1)

A code outside [0, K) or a SID of the wrong length is an error (ValueError when the shape is known
when tracing, InvalidArgumentError at run time), never a silent lookup of some other row.
"""

from typing import Hashable, List, Optional, Tuple

import tensorflow as tf
import tensorflow_text as tf_text

from models.sid_adaptation import spm

KINDS = ("unigram", "bigram", "spm", "prefix_ngram", "random_hash")
# Bigram tables grow as K^2: 4M rows is 1 GiB of float32 at 64 dimensions.
DEFAULT_MAX_ROWS = 1 << 22

PieceCodes = List[Tuple[int, int]]


def checked_codes(codes: tf.Tensor, num_levels: int, codebook_size: int) -> tf.Tensor:
  """codes as int64 [B, L], asserting L and the [0, K) range."""
  codes = tf.cast(tf.convert_to_tensor(codes), tf.int64)
  if codes.shape.rank is not None and codes.shape.rank != 2:
    raise ValueError(f"Semantic IDs must be a [batch, {num_levels}] tensor, got shape {codes.shape}")
  if codes.shape[-1] is not None and codes.shape[-1] != num_levels:
    raise ValueError(f"Semantic IDs have {codes.shape[-1]} codes, the adaptation expects {num_levels}")
  checks = [
      tf.debugging.assert_equal(tf.shape(codes)[1], num_levels,
                                message=f"Semantic IDs must have {num_levels} codes"),
      tf.debugging.assert_non_negative(codes, message=f"Semantic ID code outside [0, {codebook_size})"),
      tf.debugging.assert_less(codes, tf.constant(codebook_size, tf.int64),
                               message=f"Semantic ID code outside [0, {codebook_size})"),
  ]
  with tf.control_dependencies(checks):
    return tf.identity(codes)


class SidTokenizer(tf.Module):
  """(item_ids [B], codes [B, L]) -> tf.RaggedTensor [B, (pieces)] of int64 rows in [0, num_rows)."""

  kind = ""
  uses_codes = True
  hashed = False  # whether a row stands for whatever hashes to it (no piece_codes)

  def __init__(self, num_levels: int, codebook_size: int, num_rows: int):
    super().__init__(name=self.kind)
    if num_levels < 1 or codebook_size < 1 or num_rows < 1:
      raise ValueError(f"{self.kind}: num_levels, codebook_size and num_rows must be >= 1, got "
                       f"{num_levels}, {codebook_size}, {num_rows}")
    self.num_levels, self.codebook_size, self.num_rows = num_levels, codebook_size, num_rows

  def __call__(self, item_ids: tf.Tensor, codes: Optional[tf.Tensor]) -> tf.RaggedTensor:
    if self.uses_codes:
      codes = checked_codes(codes, self.num_levels, self.codebook_size)
    return self._pieces(tf.cast(item_ids, tf.int64), codes)

  def _pieces(self, item_ids: tf.Tensor, codes: Optional[tf.Tensor]) -> tf.RaggedTensor:
    raise NotImplementedError

  def piece_codes(self, piece: int) -> Optional[PieceCodes]:
    """The (level, code) pairs a piece stands for; None where pieces are hashed."""
    return None

  def piece_key(self, piece: int) -> Hashable:
    """What a piece stands for, equal across two tokenizers of one kind for the same piece: its codes, or
    its row where pieces are hashed."""
    return piece if self.hashed else tuple(self.piece_codes(piece))


class Unigram(SidTokenizer):
  """One piece per (level, code): L lookups into L*K rows."""

  kind = "unigram"

  def __init__(self, num_levels: int, codebook_size: int):
    super().__init__(num_levels, codebook_size, num_levels * codebook_size)

  def _pieces(self, item_ids, codes):
    offsets = tf.range(self.num_levels, dtype=tf.int64) * self.codebook_size
    return tf.RaggedTensor.from_tensor(codes + offsets)

  def piece_codes(self, piece: int) -> PieceCodes:
    return [divmod(piece, self.codebook_size)]


class Bigram(SidTokenizer):
  """Non-overlapping pairs (codes 0-1, 2-3, ...): L/2 lookups into (L/2)*K^2 rows.

  For odd L the last code is a unigram piece in a block of K extra rows, so (L//2)*K^2 + K rows and
  L//2 + 1 lookups. Tables above `max_rows` are refused rather than allocated.
  """

  kind = "bigram"

  def __init__(self, num_levels: int, codebook_size: int, max_rows: int = DEFAULT_MAX_ROWS):
    pairs, odd = divmod(num_levels, 2)
    rows = pairs * codebook_size ** 2 + odd * codebook_size
    if rows > max_rows:
      raise ValueError(f"a bigram table for {num_levels} levels x {codebook_size} codes needs {rows:,} "
                       f"rows ({pairs} x {codebook_size}^2{' + ' + str(codebook_size) if odd else ''}), "
                       f"above max_rows={max_rows:,}; use SPM or prefix-ngram, or raise max_rows")
    super().__init__(num_levels, codebook_size, rows)
    self._pairs, self._odd = pairs, odd

  def _pieces(self, item_ids, codes):
    k = self.codebook_size
    pieces = [i * k * k + codes[:, 2 * i] * k + codes[:, 2 * i + 1] for i in range(self._pairs)]
    if self._odd:
      pieces.append(self._pairs * k * k + codes[:, -1])
    return tf.RaggedTensor.from_tensor(tf.stack(pieces, axis=1))

  def piece_codes(self, piece: int) -> PieceCodes:
    k = self.codebook_size
    pair, rest = divmod(piece, k * k)
    if pair < self._pairs:
      return [(2 * pair, rest // k), (2 * pair + 1, rest % k)]
    return [(self.num_levels - 1, piece - self._pairs * k * k)]


class SentencePiece(SidTokenizer):
  """A SentencePiece vocabulary over SIDs (see spm.py), applied with tensorflow-text in graph.

  tensorflow-text keeps the model in a kernel-owned resource: tf.random.set_seed (which clears the
  eager kernel cache) destroys it for tokenizers created before, so seed initializers instead.
  """

  kind = "spm"

  def __init__(self, num_levels: int, codebook_size: int, model: bytes):
    spm.check_levels(num_levels, codebook_size)
    self._processor = spm.processor(model)
    super().__init__(num_levels, codebook_size, self._processor.get_piece_size())
    self.model = model
    self._tokenizer = tf_text.SentencepieceTokenizer(model=model, out_type=tf.int32)

  def _pieces(self, item_ids, codes):
    symbols = codes + spm.FIRST_SYMBOL + tf.range(self.num_levels, dtype=tf.int64) * self.codebook_size
    text = tf.strings.unicode_encode(tf.cast(symbols, tf.int32), "UTF-8")
    return tf.cast(self._tokenizer.tokenize(text), tf.int64)

  def piece_codes(self, piece: int) -> Optional[PieceCodes]:
    if self._processor.is_unknown(piece) or self._processor.is_control(piece):
      return None
    return spm.to_codes(self._processor.id_to_piece(piece), self.codebook_size)

  def piece_key(self, piece: int) -> Hashable:
    return self._processor.id_to_piece(piece)  # its codes' symbols, or a special piece's name


class PrefixNgram(SidTokenizer):
  """One piece per SID prefix (lengths 1..L), each hashed into `num_rows` (Zheng et al. 2025).

  Prefixes of different items that hash to one row share it: the collision rate is reported by
  SidVocabBuilder for each table budget.
  """

  kind = "prefix_ngram"
  hashed = True

  def _pieces(self, item_ids, codes):
    digits = tf.strings.as_string(codes)
    prefixes = tf.stack([tf.strings.reduce_join(digits[:, :n], axis=1, separator="-")
                         for n in range(1, self.num_levels + 1)], axis=1)
    return tf.RaggedTensor.from_tensor(tf.strings.to_hash_bucket_fast(prefixes, self.num_rows))


class RandomHash(SidTokenizer):
  """The baseline: the item id hashed into `num_rows`, one lookup, no content."""

  kind = "random_hash"
  uses_codes = False
  hashed = True

  def _pieces(self, item_ids, codes):
    return tf.RaggedTensor.from_tensor(
        tf.strings.to_hash_bucket_fast(tf.strings.as_string(item_ids), self.num_rows)[:, None])


def create(kind: str, num_levels: int, codebook_size: int, num_rows: Optional[int] = None,
           spm_model: Optional[bytes] = None, max_rows: int = DEFAULT_MAX_ROWS) -> SidTokenizer:
  """The adaptation `kind` (one of KINDS); num_rows for the hashed ones, spm_model for SPM."""
  if kind == "unigram":
    return Unigram(num_levels, codebook_size)
  if kind == "bigram":
    return Bigram(num_levels, codebook_size, max_rows)
  if kind == "spm":
    if spm_model is None:
      raise ValueError("the spm adaptation needs a SentencePiece model (SidVocabBuilder's output)")
    return SentencePiece(num_levels, codebook_size, spm_model)
  if kind in ("prefix_ngram", "random_hash"):
    if not num_rows:
      raise ValueError(f"the {kind} adaptation needs a table budget (num_rows)")
    return {"prefix_ngram": PrefixNgram, "random_hash": RandomHash}[kind](num_levels, codebook_size, num_rows)
  raise ValueError(f"unknown SID adaptation {kind!r}; expected one of {', '.join(KINDS)}")
