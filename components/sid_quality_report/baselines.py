"""Quantizers the RQ-VAE is compared with, on the same embeddings at the same L and K.

- FAISS `ResidualQuantizer` (beam-searched residual codebooks, in the embedding space).
- RQ-KMeans: k-means on the residuals level by level with greedy assignment (faiss.Kmeans), the
  training-free baseline used for Semantic IDs in later work.
"""

import math
import time
from typing import Dict

import faiss
import numpy as np

from components.sid_quality_report import metrics


def _result(codes: np.ndarray, reconstruction: np.ndarray, embeddings: np.ndarray, seconds: float
            ) -> Dict[str, object]:
  return {"codes": codes.astype(np.int64), "mse": metrics.reconstruction_mse(reconstruction, embeddings),
          "seconds": seconds}


def faiss_residual_quantizer(embeddings: np.ndarray, levels: int, codebook_size: int) -> Dict[str, object]:
  bits = int(math.log2(codebook_size))
  if 2 ** bits != codebook_size:
    raise ValueError(f"FAISS ResidualQuantizer needs a power-of-two codebook size, got {codebook_size}")
  start = time.perf_counter()
  quantizer = faiss.ResidualQuantizer(embeddings.shape[1], levels, bits)
  quantizer.train(embeddings)
  packed = quantizer.compute_codes(embeddings)
  seconds = time.perf_counter() - start
  codes = unpack_codes(packed, levels, bits)
  return dict(_result(codes, quantizer.decode(packed), embeddings, seconds), quantizer=quantizer)


def unpack_codes(packed: np.ndarray, levels: int, bits: int) -> np.ndarray:
  """FAISS packs `levels` codes of `bits` bits little-endian into bytes; returns [N, levels]."""
  as_bits = np.unpackbits(packed, axis=1, bitorder="little")[:, :levels * bits]
  weights = 1 << np.arange(bits)
  return (as_bits.reshape(len(packed), levels, bits) * weights).sum(-1)


def rq_kmeans(embeddings: np.ndarray, levels: int, codebook_size: int, seed: int = 0,
              iterations: int = 20) -> Dict[str, object]:
  start = time.perf_counter()
  residual = embeddings.astype(np.float32).copy()
  codes = np.zeros((len(embeddings), levels), np.int64)
  for level in range(levels):
    kmeans = faiss.Kmeans(residual.shape[1], codebook_size, niter=iterations, seed=seed + level,
                          verbose=False)
    kmeans.train(residual)
    codes[:, level] = kmeans.index.search(residual, 1)[1][:, 0]
    residual = residual - kmeans.centroids[codes[:, level]]
  seconds = time.perf_counter() - start
  return _result(codes, embeddings - residual, embeddings, seconds)
