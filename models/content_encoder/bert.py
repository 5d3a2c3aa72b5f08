"""A BERT encoder in tf-keras (Devlin et al. 2019) that loads HuggingFace `BertModel` weights from a
safetensors file, so pretrained sentence encoders run in TensorFlow graphs and SavedModels."""

import json
import os
from typing import Dict

import numpy as np
import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file

# Tensors of HuggingFace's BertModel that a mean-pooled sentence encoder does not use.
_UNUSED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


class _Layer(keras.layers.Layer):
  """One transformer layer: self-attention, then the feed-forward block, each post-LayerNorm."""

  def __init__(self, hidden: int, heads: int, intermediate: int, eps: float, **kwargs):
    super().__init__(**kwargs)
    self._heads, self._head_dim = heads, hidden // heads
    dense = lambda n, name, activation=None: keras.layers.Dense(n, activation=activation, name=name)
    self.query, self.key, self.value = dense(hidden, "query"), dense(hidden, "key"), dense(hidden, "value")
    self.attention_output = dense(hidden, "attention_output")
    self.attention_norm = keras.layers.LayerNormalization(epsilon=eps, name="attention_norm")
    self.intermediate = dense(intermediate, "intermediate",
                              activation=lambda x: tf.nn.gelu(x, approximate=False))
    self.output_dense = dense(hidden, "output")
    self.output_norm = keras.layers.LayerNormalization(epsilon=eps, name="output_norm")

  def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
    batch, length = tf.shape(x)[0], tf.shape(x)[1]
    return tf.transpose(tf.reshape(x, [batch, length, self._heads, self._head_dim]), [0, 2, 1, 3])

  def call(self, x: tf.Tensor, mask_bias: tf.Tensor) -> tf.Tensor:
    q, k, v = (self._split_heads(f(x)) for f in (self.query, self.key, self.value))
    scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(self._head_dim).astype(np.float32)
    context = tf.matmul(tf.nn.softmax(scores + mask_bias, axis=-1), v)
    context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), tf.shape(x))
    x = self.attention_norm(x + self.attention_output(context))
    return self.output_norm(x + self.output_dense(self.intermediate(x)))


class BertEncoder(keras.Model):
  """(token ids [B, T], mask [B, T]) -> token embeddings [B, T, hidden]; token type 0 throughout."""

  def __init__(self, config: Dict, **kwargs):
    super().__init__(**kwargs)
    hidden, eps = config["hidden_size"], config["layer_norm_eps"]
    self.word_embeddings = keras.layers.Embedding(config["vocab_size"], hidden, name="word_embeddings")
    self.position_embeddings = keras.layers.Embedding(
        config["max_position_embeddings"], hidden, name="position_embeddings")
    self.token_type_embeddings = keras.layers.Embedding(
        config["type_vocab_size"], hidden, name="token_type_embeddings")
    self.embedding_norm = keras.layers.LayerNormalization(epsilon=eps, name="embedding_norm")
    self.encoder_layers = [
        _Layer(hidden, config["num_attention_heads"], config["intermediate_size"], eps, name=f"layer_{i}")
        for i in range(config["num_hidden_layers"])]

  def call(self, inputs):
    ids, mask = inputs
    positions = tf.range(tf.shape(ids)[1])[tf.newaxis, :]
    x = self.embedding_norm(self.word_embeddings(ids) + self.position_embeddings(positions)
                            + self.token_type_embeddings(tf.zeros_like(ids)))
    # Padding gets the most negative float, as HuggingFace does, so it has zero attention weight.
    mask_bias = (1.0 - tf.cast(mask[:, tf.newaxis, tf.newaxis, :], tf.float32)) * tf.float32.min
    for layer in self.encoder_layers:
      x = layer(x, mask_bias)
    return x


def _weight_names(num_layers: int):
  """(keras variable owner, HF tensor prefix) pairs; HF Linear weights are [out, in]."""
  yield "embedding_norm", "embeddings.LayerNorm"
  for i in range(num_layers):
    hf = f"encoder.layer.{i}"
    for ours, theirs in (("query", "attention.self.query"), ("key", "attention.self.key"),
                         ("value", "attention.self.value"),
                         ("attention_output", "attention.output.dense"),
                         ("attention_norm", "attention.output.LayerNorm"),
                         ("intermediate", "intermediate.dense"), ("output", "output.dense"),
                         ("output_norm", "output.LayerNorm")):
      yield f"layer_{i}/{ours}", f"{hf}.{theirs}"


def load_bert(model_dir: str) -> BertEncoder:
  """Builds the encoder from config.json and fills it from model.safetensors, checking every tensor."""
  with tf.io.gfile.GFile(os.path.join(model_dir, "config.json")) as f:
    config = json.load(f)
  weights_path = os.path.join(model_dir, "model.safetensors")
  try:
    weights = load_file(weights_path)
  except Exception as e:  # safetensors raises its own error types for truncated or foreign files.
    raise ValueError(f"{weights_path}: cannot read safetensors weights ({e})") from e
  model = BertEncoder(config)
  model((tf.zeros([1, 2], tf.int32), tf.ones([1, 2], tf.int32)))
  used = set(_UNUSED)

  def take(name: str, transpose: bool = False) -> np.ndarray:
    if name not in weights:
      raise ValueError(f"{weights_path}: tensor {name} is missing")
    used.add(name)
    return weights[name].T if transpose else weights[name]

  def assign(variable: tf.Variable, value: np.ndarray, name: str) -> None:
    if tuple(variable.shape) != value.shape:
      raise ValueError(f"{weights_path}: {name} has shape {value.shape}, the model expects "
                       f"{tuple(variable.shape)}")
    variable.assign(value)

  for layer, hf in (("word_embeddings", "embeddings.word_embeddings"),
                    ("position_embeddings", "embeddings.position_embeddings"),
                    ("token_type_embeddings", "embeddings.token_type_embeddings")):
    assign(getattr(model, layer).embeddings, take(f"{hf}.weight"), f"{hf}.weight")
  for ours, hf in _weight_names(config["num_hidden_layers"]):
    owner = model
    for part in ours.split("/"):
      owner = (owner.encoder_layers[int(part.split("_")[1])] if part.startswith("layer_")
               else getattr(owner, "output_dense" if part == "output" else part))
    if isinstance(owner, keras.layers.LayerNormalization):
      assign(owner.gamma, take(f"{hf}.weight"), f"{hf}.weight")
      assign(owner.beta, take(f"{hf}.bias"), f"{hf}.bias")
    else:
      assign(owner.kernel, take(f"{hf}.weight", transpose=True), f"{hf}.weight")
      assign(owner.bias, take(f"{hf}.bias"), f"{hf}.bias")
  unused = sorted(set(weights) - used)
  if unused:
    raise ValueError(f"{weights_path}: tensors the model does not use: {', '.join(unused[:10])}")
  return model
