"""Residual-quantized variational autoencoder (RQ-VAE) for Semantic IDs.

Stage 1 of Singh et al. 2023, "Better Generalization with Semantic IDs" (section 3.2, appendix A),
after Lee et al. 2022 and TIGER (Rajput et al. 2023): an encoder maps a content embedding to a
latent; L residual levels each pick the nearest of K codewords for what earlier levels left over;
a decoder reconstructs the embedding from the summed codewords. An item's Semantic ID is its L codes,
coarse to fine. Loss = reconstruction + codebook + beta * commitment, straight-through gradients.

Training, in four phases:
1. a few epochs of the plain autoencoder (no quantization), so the latents are worth clustering;
2. k-means initialisation of each level's codebook on the whole corpus's residuals, level by level
   (Lee et al. 2022 and the paper initialise from k-means; over the whole corpus rather than one batch);
3. quantized training with cosine learning-rate decay (Loshchilov & Hutter 2017); at the end of each
   epoch, codes no item chose during that epoch are reset to the residuals the codebook quantizes worst
   (the paper's dead-code reset, once per epoch so live-but-rare codes are not thrashed);
4. k-means refinement of the codebooks on the final latents, then decoder fine-tuning on the codes,
   now frozen.
K-means fits on at most KMEANS_POINTS_PER_CODE * K points and assigns in chunks, so memory stays
bounded at L=8, K=2048 on a million items.

A SID refresh may start from the previous refresh's model instead (`warm_start`, stable codes): phases 1
and 2 are skipped, so every codeword starts where it was and an item whose content and neighbourhood did
not change keeps its code; phases 3 and 4 move the codebooks to the new corpus.

Example:
  model = RQVAE(RQVAEConfig(input_dim=384, num_levels=3, codebook_size=256))
  history = train(model, embeddings)          # float32 [N, 384]
  codes = model.encode(embeddings)            # int32 [N, 3]
"""

import dataclasses
import math
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

# FAISS's cap on k-means training points per centroid: more adds time, not quality.
KMEANS_POINTS_PER_CODE = 256
# Rows per distance block in k-means assignment and corpus encoding: bounds memory at large N and K.
CHUNK = 16384


@dataclasses.dataclass(frozen=True)
class RQVAEConfig:
  """Sizes and training settings. Defaults suit ~10k items (TIGER used 3 x 256 for 12k items) and were
  tuned on the bundled corpus against FAISS's ResidualQuantizer (bench/rqvae_tuning.md); the paper's
  YouTube setting is num_levels=8, codebook_size=2048, latent_dim=256."""
  input_dim: int = 384
  hidden_dim: int = 256
  # Wider than the encoder: the decoder's width bounded the reconstruction error, the encoder's did not.
  decoder_hidden_dim: int = 1024
  latent_dim: int = 64
  num_levels: int = 3
  codebook_size: int = 256
  beta: float = 1.0
  learning_rate: float = 1e-3
  batch_size: int = 256
  pretrain_epochs: int = 10  # phase 1
  epochs: int = 20  # phase 3
  refine_epochs: int = 60  # phase 4
  kmeans_iterations: int = 20
  kmeans_init: bool = True
  reset_dead_codes: bool = True
  seed: int = 0


# The settings that shape the weights: a model can start from another only when these agree.
ARCHITECTURE = ("input_dim", "hidden_dim", "decoder_hidden_dim", "latent_dim", "num_levels", "codebook_size")


def architecture_mismatch(previous: RQVAEConfig, config: RQVAEConfig) -> List[str]:
  """The ARCHITECTURE settings in which `config` differs from `previous`, as 'name: old -> new'."""
  return [f"{name}: {getattr(previous, name)} -> {getattr(config, name)}" for name in ARCHITECTURE
          if getattr(previous, name) != getattr(config, name)]


class RQVAE(keras.Model):
  """Encoder -> residual quantizer (num_levels x codebook_size codewords) -> decoder."""

  def __init__(self, config: RQVAEConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    keras.utils.set_random_seed(config.seed)
    self.encoder = keras.Sequential([keras.layers.Dense(config.hidden_dim, activation="relu"),
                                     keras.layers.Dense(config.latent_dim)], name="encoder")
    self.decoder = keras.Sequential([keras.layers.Dense(config.decoder_hidden_dim, activation="relu"),
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


def nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
  """Index of each point's nearest centroid, CHUNK points at a time (never all pairs at once)."""
  norms = (centroids ** 2).sum(1)
  return np.concatenate([
      (-2.0 * points[start:start + CHUNK] @ centroids.T + norms[None, :]).argmin(1)
      for start in range(0, len(points), CHUNK)])


def kmeans(points: np.ndarray, k: int, iterations: int, rng: np.random.Generator,
           centroids: Optional[np.ndarray] = None) -> np.ndarray:
  """Lloyd's k-means from `centroids` or from k random points; with fewer points than k, extra
  centroids are jittered copies of points. An emptied cluster keeps its centroid."""
  if centroids is None:
    picks = rng.choice(len(points), size=k, replace=len(points) < k)
    centroids = points[picks] + (rng.normal(scale=1e-3, size=(k, points.shape[1])) if len(points) < k else 0)
  centroids = centroids.astype(np.float32)
  for _ in range(iterations):
    assignment = nearest(points, centroids)
    counts = np.bincount(assignment, minlength=k)
    # Sums per cluster as a sorted segment sum: np.add.at is an order of magnitude slower.
    order = np.argsort(assignment, kind="stable")
    filled = counts > 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
    sums = np.add.reduceat(points[order], starts, axis=0, dtype=np.float64)
    centroids[filled] = sums / counts[filled, None]
  return centroids


def latents(model: RQVAE, embeddings: np.ndarray) -> np.ndarray:
  """Encoder outputs of all embeddings, CHUNK rows at a time."""
  return np.concatenate([model.encoder(embeddings[s:s + CHUNK]).numpy()
                         for s in range(0, len(embeddings), CHUNK)])


def encode_all(model: RQVAE, embeddings: np.ndarray) -> np.ndarray:
  """Codes [N, L] of all embeddings, CHUNK rows at a time."""
  return np.concatenate([model.encode(embeddings[s:s + CHUNK]).numpy()
                         for s in range(0, len(embeddings), CHUNK)])


def kmeans_sample(embeddings: np.ndarray, config: RQVAEConfig, rng: np.random.Generator) -> np.ndarray:
  """The whole corpus, or KMEANS_POINTS_PER_CODE * K random items of a larger one."""
  cap = KMEANS_POINTS_PER_CODE * config.codebook_size
  return embeddings if len(embeddings) <= cap else embeddings[rng.choice(len(embeddings), cap, replace=False)]


def fit_codebooks(model: RQVAE, embeddings: np.ndarray, rng: np.random.Generator,
                  from_current: bool = False) -> None:
  """RQ-KMeans on the latents: k-means on each level's residuals, level by level, greedy assignment.
  From scratch for the initialisation; from the current codebooks for the final refinement."""
  residual = latents(model, kmeans_sample(embeddings, model.config, rng))
  current = model.codebooks.numpy()
  codebooks = []
  for level in range(model.config.num_levels):
    centroids = kmeans(residual, model.config.codebook_size, model.config.kmeans_iterations, rng,
                       current[level] if from_current else None)
    residual = residual - centroids[nearest(residual, centroids)]
    codebooks.append(centroids)
  model.codebooks.assign(np.stack(codebooks))


def reset_dead_codes(model: RQVAE, counts: np.ndarray, sample: np.ndarray) -> np.ndarray:
  """Resets codewords no item chose over an epoch (counts [L, K] == 0) to the residuals of the sample
  items worst quantized at that level, so they take over where error is highest. Level by level: a
  level's residuals depend on the codewords just reset above it. Returns resets per level."""
  latent = model.encoder(sample)
  resets = []
  for level in range(model.config.num_levels):
    _, residuals, chosen = model.quantize(latent)
    residual = residuals[level].numpy()
    error = ((residual - chosen[level].numpy()) ** 2).sum(1)
    dead = np.flatnonzero(counts[level] == 0)
    worst = np.argsort(-error, kind="stable")[:len(dead)]
    codebook = model.codebooks[level].numpy()
    codebook[dead[:len(worst)]] = residual[worst]
    model.codebooks[level].assign(codebook)
    resets.append(len(worst))
  return np.array(resets)


def code_usage(codes: np.ndarray, codebook_size: int) -> List[Dict[str, float]]:
  """Per level: share of the K codes in use and perplexity (exp of the code distribution's entropy)."""
  return [_usage(np.bincount(codes[:, level], minlength=codebook_size)) for level in range(codes.shape[1])]


def _usage(counts: np.ndarray) -> Dict[str, float]:
  p = counts[counts > 0] / counts.sum()
  return {"utilisation": float((counts > 0).sum() / len(counts)),
          "perplexity": float(math.exp(-(p * np.log(p)).sum()))}


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


def _cosine(learning_rate: float, epochs: int, steps_per_epoch: int) -> keras.optimizers.Adam:
  """Adam with cosine decay to zero over a phase (Loshchilov & Hutter 2017, SGDR)."""
  return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
      learning_rate, decay_steps=max(epochs * steps_per_epoch, 1)))


def _reconstruction(embeddings: tf.Tensor, reconstruction: tf.Tensor) -> Dict[str, tf.Tensor]:
  error = tf.reduce_mean(tf.reduce_sum(tf.square(embeddings - reconstruction), 1))
  return {"total": error, "reconstruction": error}


def _autoencoder_loss(model: RQVAE, batch: tf.Tensor, codes: tf.Tensor):
  """Phase 1: the plain autoencoder, no quantization."""
  return _reconstruction(batch, model.decoder(model.encoder(batch))), codes


def _rqvae_loss(model: RQVAE, batch: tf.Tensor, codes: tf.Tensor):
  """Phase 3: the RQ-VAE loss; the codes are the ones the batch gets now."""
  del codes
  outputs = model(batch, training=True)
  return losses(model, batch, outputs), outputs["codes"]


def _decoder_loss(model: RQVAE, batch: tf.Tensor, codes: tf.Tensor):
  """Phase 4: the decoder on the frozen codes (encoder and codebooks no longer change them)."""
  return _reconstruction(batch, model.decode(codes)), codes


def _step(model: RQVAE, optimizer: keras.optimizers.Optimizer, variables: List[tf.Variable],
          loss_fn: Callable) -> Callable[[tf.Tensor, tf.Tensor], Tuple[Dict[str, tf.Tensor], tf.Tensor]]:
  """One gradient step of `loss_fn` on `variables`; returns the losses and the batch's codes.
  Traced once for any batch size and without AutoGraph (the loops are over levels, not tensors):
  tracing, not training, dominated the time on a corpus of ~10k items."""
  config = model.config

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, config.input_dim], tf.float32),
      tf.TensorSpec([None, config.num_levels], tf.int32)])
  def step(batch, codes):
    with tf.GradientTape() as tape:
      loss, codes = loss_fn(model, batch, codes)
    optimizer.apply_gradients(zip(tape.gradient(loss["total"], variables), variables))
    return loss, codes

  return step


def _epoch(step, embeddings: np.ndarray, codes: np.ndarray, config: RQVAEConfig,
           rng: np.random.Generator) -> Tuple[Dict[str, float], np.ndarray]:
  """One shuffled pass: mean losses and how often each code was chosen [L, K]."""
  order = rng.permutation(len(embeddings))
  totals: Dict[str, float] = {}
  counts = np.zeros((config.num_levels, config.codebook_size), np.int64)
  batches = range(0, len(order), config.batch_size)
  for start in batches:
    rows = order[start:start + config.batch_size]
    loss, batch_codes = step(tf.constant(embeddings[rows]), tf.constant(codes[rows]))
    for level, level_codes in enumerate(batch_codes.numpy().T):
      counts[level] += np.bincount(level_codes, minlength=config.codebook_size)
    for key, value in loss.items():
      totals[key] = totals.get(key, 0.0) + float(value) / len(batches)
  return totals, counts


def train(model: RQVAE, embeddings: np.ndarray, log=print, warm_start: bool = False) -> List[Dict[str, float]]:
  """Trains in the four phases of the module docstring; returns per-epoch losses and code usage.
  With `warm_start` the model holds a previous model's weights (saved_model.restore): no pretraining and
  no k-means initialisation, which would move every codeword."""
  config = model.config
  check_embeddings(embeddings, config)
  rng = np.random.default_rng(config.seed)
  embeddings = embeddings.astype(np.float32)
  steps = math.ceil(len(embeddings) / config.batch_size)
  codes = np.zeros((len(embeddings), config.num_levels), np.int32)
  autoencoder = model.encoder.trainable_variables + model.decoder.trainable_variables
  phases = [("pretrain", 0 if warm_start else config.pretrain_epochs, autoencoder, _autoencoder_loss),
            ("train", config.epochs, model.trainable_variables, _rqvae_loss),
            ("refine", config.refine_epochs, model.decoder.trainable_variables, _decoder_loss)]
  history = []
  for phase, epochs, variables, loss_fn in phases:
    if phase == "train" and config.kmeans_init and not warm_start:
      fit_codebooks(model, embeddings, rng)
    if phase == "refine" and epochs:
      fit_codebooks(model, embeddings, rng, from_current=True)
      codes = encode_all(model, embeddings)
    step = _step(model, _cosine(config.learning_rate, epochs, steps), variables, loss_fn)
    for epoch in range(epochs):
      totals, counts = _epoch(step, embeddings, codes, config, rng)
      # Not after the last epoch: a reset codeword would go untrained.
      resets = (reset_dead_codes(model, counts, _reset_sample(embeddings, config, rng))
                if phase == "train" and config.reset_dead_codes and epoch + 1 < epochs
                else np.zeros(config.num_levels, np.int64))
      history.append(_record(totals, counts if phase != "pretrain" else None, phase, len(history) + 1,
                             resets, log if epoch in (0, epochs - 1) or (epoch + 1) % 10 == 0 else None))
  return history


def _reset_sample(embeddings: np.ndarray, config: RQVAEConfig, rng: np.random.Generator) -> np.ndarray:
  """Random items whose worst residuals replace dead codewords: enough to revive every code."""
  size = min(len(embeddings), max(config.batch_size, 4 * config.codebook_size))
  return embeddings[rng.choice(len(embeddings), size, replace=False)]


def _record(totals: Dict[str, float], counts: Optional[np.ndarray], phase: str, epoch: int,
            resets: np.ndarray, log: Optional[Callable[[str], None]]) -> Dict[str, object]:
  """One epoch's history entry; code usage is counted over the epoch's batches (none before
  quantization)."""
  usage = [_usage(level_counts) for level_counts in counts] if counts is not None else []
  record = dict(totals, epoch=epoch, phase=phase, resets=resets.tolist(),
                utilisation=[u["utilisation"] for u in usage],
                perplexity=[u["perplexity"] for u in usage])
  if log:
    log(f"epoch {epoch:>4} ({phase}): loss {totals['total']:.5f}, utilisation "
        f"{' '.join(f'{u:.2f}' for u in record['utilisation'])}, perplexity "
        f"{' '.join(f'{p:.0f}' for p in record['perplexity'])}, resets {resets.tolist()}")
  return record
