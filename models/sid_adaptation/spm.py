"""A SentencePiece vocabulary over Semantic IDs (Singh et al. 2023, section 3.3, "SPM").

Each (level, code) of an L x K Semantic ID is one character, so a SID is an L-character "sentence"
and SentencePiece learns variable-length pieces: runs of consecutive codes that are frequent in the
impressions, while rare combinations fall back to single codes. Every one of the L*K symbols is
put in the training text once, so any valid SID tokenizes without an unknown piece, including
SIDs of items never impressed.

Example:
  model = train(codes, weights, num_levels=3, codebook_size=256, vocab_size=4096)
  library_pieces(model, codes)   # what the sentencepiece library makes of each SID

Model type is BPE: sentencepiece's unigram trainer (0.2) learned no piece longer than one symbol
over such sentences at any vocabulary size we tried, which would make SPM a unigram adaptation.
"""

import io
import os
import tempfile
from typing import List

import numpy as np
import sentencepiece

# Supplementary Private Use Area-A: 65,534 code points no text uses, so symbols never clash with
# SentencePiece's own meta characters or normalisation.
FIRST_SYMBOL = 0xF0000
MAX_SYMBOLS = 65534
UNKNOWN_ID = 0


def check_levels(num_levels: int, codebook_size: int) -> None:
  if num_levels < 1 or codebook_size < 1:
    raise ValueError(f"need num_levels >= 1 and codebook_size >= 1, got {num_levels} and {codebook_size}")
  if num_levels * codebook_size > MAX_SYMBOLS:
    raise ValueError(f"{num_levels} levels x {codebook_size} codes = {num_levels * codebook_size} symbols, "
                     f"more than the {MAX_SYMBOLS} a SentencePiece vocabulary over SIDs can spell")


def min_vocab_size(num_levels: int, codebook_size: int) -> int:
  """Every (level, code) symbol plus the <unk> row SentencePiece always reserves."""
  return num_levels * codebook_size + 1


def check_vocab_size(vocab_size: int, num_levels: int, codebook_size: int) -> None:
  check_levels(num_levels, codebook_size)
  if vocab_size < min_vocab_size(num_levels, codebook_size):
    raise ValueError(
        f"vocabulary size {vocab_size} is below the {min_vocab_size(num_levels, codebook_size)} rows "
        f"needed for {num_levels * codebook_size} distinct (level, code) symbols plus <unk>")


def to_text(codes: np.ndarray, codebook_size: int) -> List[str]:
  """[N, L] codes -> N strings of L symbols (symbol = level * K + code)."""
  offsets = FIRST_SYMBOL + np.arange(codes.shape[1]) * codebook_size
  return ["".join(map(chr, row)) for row in (codes + offsets).tolist()]


def to_codes(text: str, codebook_size: int) -> List[tuple]:
  """A piece's symbols back to (level, code) pairs."""
  return [divmod(ord(char) - FIRST_SYMBOL, codebook_size) for char in text]


def train(codes: np.ndarray, weights: np.ndarray, num_levels: int, codebook_size: int,
          vocab_size: int) -> bytes:
  """A serialized SentencePiece model learned from SIDs weighted by how often they were impressed.

  `vocab_size` is the embedding table budget in rows (one row per piece, <unk> included, never used
  by a valid SID). Raises ValueError for a budget below min_vocab_size() or no weighted SID.
  """
  check_vocab_size(vocab_size, num_levels, codebook_size)
  weights = np.asarray(weights)
  if codes.shape[0] != weights.shape[0] or not (weights > 0).any():
    raise ValueError("no impressed Semantic ID to learn a vocabulary from")
  every_symbol = np.arange(num_levels * codebook_size)[:, None] + FIRST_SYMBOL
  lines = [f"{text}\t{int(w)}" for text, w in zip(to_text(codes, codebook_size), weights) if w > 0]
  lines += [f"{chr(symbol)}\t1" for symbol in every_symbol[:, 0]]
  model = io.BytesIO()
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "sids.tsv")  # "sentence<TAB>count": SentencePiece's weighted input
    with open(path, "w", encoding="utf-8") as f:
      f.write("\n".join(lines) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=path, input_format="tsv", model_writer=model, model_type="bpe", vocab_size=vocab_size,
        hard_vocab_limit=False, character_coverage=1.0, max_sentencepiece_length=num_levels,
        add_dummy_prefix=False, remove_extra_whitespaces=False, normalization_rule_name="identity",
        split_by_unicode_script=False, split_by_number=False, bos_id=-1, eos_id=-1,
        unk_id=UNKNOWN_ID, num_threads=os.cpu_count() or 1, minloglevel=2)
  return model.getvalue()


def processor(model: bytes) -> sentencepiece.SentencePieceProcessor:
  return sentencepiece.SentencePieceProcessor(model_proto=model)


def library_pieces(model: bytes, codes: np.ndarray, codebook_size: int) -> List[List[int]]:
  """Piece ids of each SID according to the sentencepiece library itself."""
  return processor(model).encode(to_text(codes, codebook_size))
