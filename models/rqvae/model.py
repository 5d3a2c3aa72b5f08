"""Residual-quantized variational autoencoder (RQ-VAE) for Semantic IDs.

Stage 1 of Singh et al. 2023, "Better Generalization with Semantic IDs" (section 3.2, appendix A),
after Lee et al. 2022 and TIGER (Rajput et al. 2023): an encoder maps a content embedding to a
latent; L residual levels each pick the nearest of K codewords for what earlier levels left over;
a decoder reconstructs the embedding from the summed codewords. An item's Semantic ID is its L codes,
coarse to fine. Loss = reconstruction + codebook + beta * commitment, straight-through gradients.
Against codebook collapse: k-means initialisation of each level from the first batch's residuals,
and, at every step, codes unused in the batch are reset to residuals of random items of the batch.

Example:
  model = RQVAE(RQVAEConfig(input_dim=384, num_levels=3, codebook_size=256))
  history = train(model, embeddings)          # float32 [N, 384]
  codes = model.encode(embeddings)            # int32 [N, 3]
"""

import dataclasses
import math
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras


@dataclasses.dataclass(frozen=True)
class RQVAEConfig:
  """Sizes and training settings. Defaults suit ~10k items (TIGER used 3 x 256 for 12k items);
  the paper's YouTube setting is num_levels=8, codebook_size=2048, latent_dim=256."""
  input_dim: int = 384
  hidden_dim: int = 256
  latent_dim: int = 32
  num_levels: int = 3
  codebook_size: int = 256
  beta: float = 0.25
  learning_rate: float = 1e-3
  batch_size: int = 1024
  epochs: int = 150
  kmeans_iterations: int = 20
  kmeans_init: bool = True
  reset_dead_codes: bool = True
  seed: int = 0


class RQVAE(keras.Model):
  """Encoder -> residual quantizer (num_levels x codebook_size codewords) -> decoder."""

  def __init__(self, config: RQVAEConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    keras.utils.set_random_seed(config.seed)
    self.encoder = keras.Sequential([keras.layers.Dense(config.hidden_dim, activation="relu"),
                                     keras.layers.Dense(config.latent_dim)], name="encoder")
    self.decoder = keras.Sequential([keras.layers.Dense(config.hidden_dim, activation="relu"),
                                     keras.layers.Dense(config.input_dim)], name="decoder")
    self.codebooks = tf.Variable(
        tf.random.normal([config.num_levels, config.codebook_size, config.latent_dim], stddev=0.1),
        name="codebooks")
    self.encoder.build([None, config.input_dim])
    self.decoder.build([None, config.latent_dim])

  def quantize(self, latent: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """codes [B, L] int32, residuals entering each level [L, B, D'], chosen codewords [L, B, D']."""
    residual, codes, residuals, chosen = latent, [], [], []
    for level in range(self.config.num_levels):
      codebook = self.codebooks[level]
      distances = (tf.reduce_sum(tf.square(residual), 1, keepdims=True)
                   - 2.0 * tf.matmul(residual, codebook, transpose_b=True)
                   + tf.reduce_sum(tf.square(codebook), 1)[tf.newaxis, :])
      code = tf.argmin(distances, axis=1, output_type=tf.int32)
      codeword = tf.gather(codebook, code)
      codes.append(code)
      residuals.append(residual)
      chosen.append(codeword)
      residual = residual - tf.stop_gradient(codeword)
    return tf.stack(codes, axis=1), tf.stack(residuals), tf.stack(chosen)

  def call(self, embeddings: tf.Tensor) -> Dict[str, tf.Tensor]:
    latent = self.encoder(embeddings)
    codes, residuals, chosen = self.quantize(latent)
    quantized = tf.reduce_sum(chosen, axis=0)
    # Straight-through: the decoder sees the codewords, the encoder gets the decoder's gradient.
    reconstruction = self.decoder(latent + tf.stop_gradient(quantized - latent))
    return {"codes": codes, "residuals": residuals, "chosen": chosen,
            "reconstruction": reconstruction}

  def encode(self, embeddings: tf.Tensor) -> tf.Tensor:
    return self.quantize(self.encoder(embeddings))[0]

  def decode(self, codes: tf.Tensor) -> tf.Tensor:
    codewords = [tf.gather(self.codebooks[level], codes[:, level])
                 for level in range(self.config.num_levels)]
    return self.decoder(tf.add_n(codewords))


def losses(model: RQVAE, embeddings: tf.Tensor, outputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  # Squared error per item (summed over dimensions): averaged per dimension, the reconstruction of
  # unit-norm embeddings is too small a term next to the latent-space losses to shape the encoder.
  reconstruction = tf.reduce_mean(tf.reduce_sum(tf.square(embeddings - outputs["reconstruction"]), 1))
  residuals, chosen = outputs["residuals"], outputs["chosen"]
  codebook = tf.reduce_mean(tf.square(tf.stop_gradient(residuals) - chosen))
  commitment = tf.reduce_mean(tf.square(residuals - tf.stop_gradient(chosen)))
  total = reconstruction + codebook + model.config.beta * commitment
  return {"total": total, "reconstruction": reconstruction, "codebook": codebook,
          "commitment": commitment}


def _sq_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
  return ((points ** 2).sum(1)[:, None] - 2.0 * points @ centroids.T + (centroids ** 2).sum(1)[None, :])


def kmeans(points: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
  """Lloyd's k-means; with fewer points than k, extra centroids are jittered copies of points."""
  picks = rng.choice(len(points), size=k, replace=len(points) < k)
  centroids = points[picks] + (rng.normal(scale=1e-3, size=(k, points.shape[1])) if len(points) < k else 0)
  for _ in range(iterations):
    assignment = _sq_distances(points, centroids).argmin(1)
    for c in range(k):
      members = points[assignment == c]
      if len(members):
        centroids[c] = members.mean(0)
  return centroids.astype(np.float32)


def kmeans_init(model: RQVAE, batch: np.ndarray, rng: np.random.Generator) -> None:
  """Sets each level's codebook to k-means centroids of the first batch's residuals at that level."""
  residual = model.encoder(batch).numpy()
  codebooks = []
  for _ in range(model.config.num_levels):
    centroids = kmeans(residual, model.config.codebook_size, model.config.kmeans_iterations, rng)
    nearest = _sq_distances(residual, centroids).argmin(1)
    residual = residual - centroids[nearest]
    codebooks.append(centroids)
  model.codebooks.assign(np.stack(codebooks))


def reset_dead_codes(model: RQVAE, codes: tf.Tensor, residuals: tf.Tensor) -> tf.Tensor:
  """Replaces codewords no item of the batch chose with residuals of random items of the batch.

  Returns how many codes were reset per level.
  """
  k, batch = model.config.codebook_size, tf.shape(codes)[0]
  resets = []
  for level in range(model.config.num_levels):
    used = tf.math.bincount(codes[:, level], minlength=k, maxlength=k) > 0
    dead = tf.where(tf.logical_not(used))
    donors = tf.random.uniform([tf.shape(dead)[0]], 0, batch, dtype=tf.int32)
    updated = tf.tensor_scatter_nd_update(model.codebooks[level], dead,
                                          tf.gather(residuals[level], donors))
    model.codebooks[level].assign(updated)
    resets.append(tf.shape(dead)[0])
  return tf.stack(resets)


def code_usage(codes: np.ndarray, codebook_size: int) -> List[Dict[str, float]]:
  """Per level: share of the K codes in use and perplexity (exp of the code distribution's entropy)."""
  usage = []
  for level in range(codes.shape[1]):
    counts = np.bincount(codes[:, level], minlength=codebook_size)
    p = counts[counts > 0] / counts.sum()
    usage.append({"utilisation": float((counts > 0).sum() / codebook_size),
                  "perplexity": float(math.exp(-(p * np.log(p)).sum()))})
  return usage


def check_embeddings(embeddings: np.ndarray, config: RQVAEConfig) -> None:
  """Refuses inputs the model cannot learn from, naming the cause."""
  if embeddings.ndim != 2 or embeddings.shape[0] == 0:
    raise ValueError(f"expected a non-empty [N, {config.input_dim}] matrix, got shape {embeddings.shape}")
  if embeddings.shape[1] != config.input_dim:
    raise ValueError(f"embeddings have dimension {embeddings.shape[1]}, the model expects "
                     f"{config.input_dim}")
  bad = np.flatnonzero(~np.isfinite(embeddings).all(1))
  if len(bad):
    raise ValueError(f"{len(bad)} embeddings hold NaN or Inf (rows {bad[:10].tolist()})")
  if embeddings.shape[0] < config.codebook_size:
    raise ValueError(f"{embeddings.shape[0]} items are fewer than codebook_size={config.codebook_size}: "
                     f"k-means initialisation needs at least one item per code")


def train(model: RQVAE, embeddings: np.ndarray, log=print) -> List[Dict[str, float]]:
  """Trains on all embeddings for config.epochs; returns per-epoch losses and code usage."""
  config = model.config
  check_embeddings(embeddings, config)
  rng = np.random.default_rng(config.seed)
  optimizer = keras.optimizers.Adam(config.learning_rate)
  embeddings = embeddings.astype(np.float32)

  @tf.function
  def step(batch):
    with tf.GradientTape() as tape:
      outputs = model(batch, training=True)
      loss = losses(model, batch, outputs)
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss["total"], variables), variables))
    resets = (reset_dead_codes(model, outputs["codes"], outputs["residuals"])
              if config.reset_dead_codes else tf.zeros([config.num_levels], tf.int32))
    return loss, resets

  history = []
  for epoch in range(config.epochs):
    order = rng.permutation(len(embeddings))
    if epoch == 0 and config.kmeans_init:
      kmeans_init(model, embeddings[order[:config.batch_size]], rng)
    totals: Dict[str, float] = {}
    resets = np.zeros(config.num_levels, np.int64)
    batches = range(0, len(order), config.batch_size)
    for start in batches:
      loss, reset = step(tf.constant(embeddings[order[start:start + config.batch_size]]))
      resets += reset.numpy()
      for key, value in loss.items():
        totals[key] = totals.get(key, 0.0) + float(value) / len(batches)
    usage = code_usage(model.encode(embeddings).numpy(), config.codebook_size)
    record = dict(totals, epoch=epoch + 1, resets=resets.tolist(),
                  utilisation=[u["utilisation"] for u in usage],
                  perplexity=[u["perplexity"] for u in usage])
    history.append(record)
    if epoch == 0 or (epoch + 1) % 10 == 0 or epoch + 1 == config.epochs:
      log(f"epoch {epoch + 1:>4}: loss {totals['total']:.5f} (reconstruction "
          f"{totals['reconstruction']:.5f}), utilisation "
          f"{' '.join(f'{u:.2f}' for u in record['utilisation'])}, perplexity "
          f"{' '.join(f'{p:.0f}' for p in record['perplexity'])}, resets {resets.tolist()}")
  return history
