"""BERT WordPiece tokenization in the TensorFlow graph (tensorflow-text), as HuggingFace's
BertTokenizer does it for uncased models: lower case, accents stripped, CJK characters and
punctuation split, [CLS] ... [SEP], truncated to the model's maximum length."""

from typing import Tuple

import tensorflow as tf
import tensorflow_text as tf_text

CLS, SEP, UNK = "[CLS]", "[SEP]", "[UNK]"


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
    self._tokenizer = tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=True,
                                            unknown_token=UNK)
    self._max_pieces = max_seq_length - 2

  def __call__(self, texts: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    pieces = self._tokenizer.tokenize(texts).merge_dims(-2, -1)[:, :self._max_pieces]
    batch = tf.shape(texts, out_type=tf.int64)[:1]
    cls = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self._cls, tf.int64))
    sep = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self._sep, tf.int64))
    ids = tf.concat([cls, pieces, sep], axis=1)
    return (tf.cast(ids.to_tensor(0), tf.int32),
            tf.cast(tf.ones_like(ids).to_tensor(0), tf.int32))
