"""The frozen RQ-VAE as a SavedModel: `encode` (embeddings -> codes) and `decode` (codes -> embeddings)."""

import json
import os
from typing import Dict

import tensorflow as tf

from models.rqvae import model as rqvae

CONFIG_FILE = "rqvae_config.json"
ENCODE, DECODE = "encode", "decode"
EMBEDDINGS_KEY, CODES_KEY, RECONSTRUCTION_KEY = "embeddings", "codes", "reconstruction"


def export(model: rqvae.RQVAE, export_dir: str) -> str:
  """Writes signatures encode(embeddings float32 [None, D]) -> {codes int32 [None, L]} and
  decode(codes int32 [None, L]) -> {reconstruction float32 [None, D]}, plus the config as an asset."""
  config = model.config
  encode = tf.function(lambda embeddings: {CODES_KEY: model.encode(embeddings)}, input_signature=[
      tf.TensorSpec([None, config.input_dim], tf.float32, name=EMBEDDINGS_KEY)])
  decode = tf.function(lambda codes: {RECONSTRUCTION_KEY: model.decode(codes)}, input_signature=[
      tf.TensorSpec([None, config.num_levels], tf.int32, name=CODES_KEY)])
  # A plain tf.Module holds the variables: the SavedModel needs no Keras to load.
  holder = tf.Module()
  holder.model = model
  tf.saved_model.save(holder, export_dir, signatures={ENCODE: encode, DECODE: decode})
  tf.io.gfile.makedirs(os.path.join(export_dir, "assets.extra"))
  with tf.io.gfile.GFile(os.path.join(export_dir, "assets.extra", CONFIG_FILE), "w") as f:
    json.dump(config.__dict__, f, indent=1)
  return export_dir


def load_config(export_dir: str) -> rqvae.RQVAEConfig:
  with tf.io.gfile.GFile(os.path.join(export_dir, "assets.extra", CONFIG_FILE)) as f:
    return rqvae.RQVAEConfig(**json.load(f))


def restore(model: rqvae.RQVAE, export_dir: str) -> None:
  """Loads the weights of a model `export` wrote into `model`, whose ARCHITECTURE settings must agree
  (ValueError naming the ones that differ)."""
  mismatch = rqvae.architecture_mismatch(load_config(export_dir), model.config)
  if mismatch:
    raise ValueError(f"the previous RQ-VAE in {export_dir} has another architecture ({'; '.join(mismatch)})")
  # The SavedModel's variables are a checkpoint whose root held the model as `model` (export above).
  status = tf.train.Checkpoint(model=model).read(os.path.join(export_dir, "variables", "variables"))
  status.expect_partial().assert_existing_objects_matched()


def load_signatures(export_dir: str) -> Dict[str, object]:
  loaded = tf.saved_model.load(export_dir)
  return {ENCODE: loaded.signatures[ENCODE], DECODE: loaded.signatures[DECODE]}
