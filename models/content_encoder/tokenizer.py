"""BERT WordPiece tokenization in the TensorFlow graph (tensorflow-text), as HuggingFace's BertTokenizer
does it for uncased models: control characters dropped, accents stripped, lower case, CJK characters and
punctuation split, [CLS] ... [SEP], truncated to the model's maximum length."""

from typing import Tuple

import tensorflow as tf
import tensorflow_text as tf_text

CLS, SEP, UNK = "[CLS]", "[SEP]", "[UNK]"
# HuggingFace's WordPiece gives [UNK] for words longer than this many characters.
MAX_CHARS_PER_WORD = 100
# HuggingFace's BertNormalizer drops NUL, U+FFFD and control, format and private-use characters except
# \t \n \r (RE2 cannot match unassigned code points, which it also drops), and makes whitespace a space.
_DROPPED = r"[\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{7F}-\x{9F}\p{Cf}\p{Co}\x{FFFD}]"
_WHITESPACE = r"[\t\n\r\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
# Words end at spaces; ASCII and Unicode punctuation and CJK ideographs are words of their own.
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
_CJK = (r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
        r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]")


def normalize(texts: tf.Tensor) -> tf.Tensor:
  """HuggingFace's BertNormalizer: clean, NFD, drop non-spacing marks, lower case character by character.

  tensorflow-text's own `lower_case=True` applies NFKC case folding instead, which changes ids for
  text such as "½", "³", "ß" or "…" (all in MovieLens titles).
  """
  texts = tf.strings.regex_replace(texts, _DROPPED, "")
  texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")
  texts = tf.strings.regex_replace(tf_text.normalize_utf8(texts, "NFD"), r"\p{Mn}", "")
  # ICU lower-cases a word-final capital sigma to a final sigma; HuggingFace maps every Σ to σ.
  return tf.strings.lower(tf.strings.regex_replace(texts, "Σ", "σ"), encoding="utf-8")


class WordPieceTokenizer(tf.Module):
  """strings [B] -> (token ids [B, T] int32, attention mask [B, T] int32), padded to the longest."""

  def __init__(self, vocab_path: str, max_seq_length: int):
    super().__init__()
    vocab = tf.io.gfile.GFile(vocab_path).read().splitlines()
    self._cls, self._sep = vocab.index(CLS), vocab.index(SEP)
    # The vocabulary file becomes a SavedModel asset through the initializer.
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.TextFileInitializer(vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                      tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
        num_oov_buckets=1)
    # tf_text.BertTokenizer's word splitting and WordPiece as two steps, so that the word length
    # limit counts characters (as HuggingFace does) rather than bytes.
    self._pieces = tf_text.WordpieceTokenizer(
        table, max_bytes_per_word=4 * MAX_CHARS_PER_WORD, token_out_type=tf.int64, unknown_token=UNK)
    self._max_pieces = max_seq_length - 2

  def __call__(self, texts: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    words = tf_text.regex_split(normalize(texts), rf" |{_PUNCTUATION}|{_CJK}", rf"{_PUNCTUATION}|{_CJK}")
    words = tf.ragged.map_flat_values(
        lambda w: tf.where(tf.strings.length(w, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD, UNK, w), words)
    pieces = self._pieces.tokenize(words).merge_dims(-2, -1)[:, :self._max_pieces]
    batch = tf.shape(texts, out_type=tf.int64)[:1]
    cls = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self._cls, tf.int64))
    sep = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self._sep, tf.int64))
    ids = tf.concat([cls, pieces, sep], axis=1)
    return (tf.cast(ids.to_tensor(0), tf.int32),
            tf.cast(tf.ones_like(ids).to_tensor(0), tf.int32))
