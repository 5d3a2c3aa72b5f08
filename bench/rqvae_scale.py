"""RQ-VAE at the paper's scale: L = 8 levels of K = 2,048 codes (Singh et al. 2023, appendix A) on a
synthetic corpus of 1,000,000 items x 256 dimensions, with the pipeline's trainer (models/rqvae/model.py).

  .venv/bin/python bench/rqvae_scale.py [--items 1000000] [--dim 256] [--levels 8] [--codes 2048]

Prints seconds per epoch of each training phase, the seconds of each k-means fit of the codebooks (the
initialisation before the quantized phase, the refinement before the decoder's), peak memory of the process
(the corpus itself is items x dim x 4 bytes) and the share of items with a unique SID. One epoch per phase:
a time per epoch, not a converged model.

The corpus: unit vectors around 4,096 random centres, drawn in chunks (no all-pairs distances anywhere).
"""

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from components.sid_quality_report import metrics
from models.rqvae import model as rqvae

CENTRES = 4096
CHUNK = 65536


def synthetic_corpus(items: int, dim: int, seed: int = 0) -> np.ndarray:
  """[items, dim] float32 unit vectors: a random centre plus noise each, normalised."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(CENTRES, dim)).astype(np.float32)
  corpus = np.empty((items, dim), np.float32)
  for start in range(0, items, CHUNK):
    rows = min(CHUNK, items - start)
    chunk = centres[rng.integers(0, CENTRES, rows)] + 0.5 * rng.normal(size=(rows, dim)).astype(np.float32)
    corpus[start:start + rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
  return corpus


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--items", type=int, default=1_000_000)
  parser.add_argument("--dim", type=int, default=256)
  parser.add_argument("--levels", type=int, default=8)
  parser.add_argument("--codes", type=int, default=2048)
  parser.add_argument("--no_kmeans", action="store_true",
                      help="skip the k-means fits (random codebooks, no refinement): the epochs alone, in minutes")
  args = parser.parse_args(argv)

  start = time.perf_counter()
  corpus = synthetic_corpus(args.items, args.dim)
  print(f"corpus: {args.items:,} x {args.dim} float32 ({corpus.nbytes / 2**20:,.0f} MB) in "
        f"{time.perf_counter() - start:.1f}s; peak memory so far {_peak_mb():,.0f} MB", flush=True)
  config = rqvae.RQVAEConfig(input_dim=args.dim, num_levels=args.levels, codebook_size=args.codes,
                             pretrain_epochs=1, epochs=1, refine_epochs=0 if args.no_kmeans else 1,
                             kmeans_init=not args.no_kmeans)
  model = rqvae.RQVAE(config)
  marks, kmeans_seconds = [time.perf_counter()], []
  fit_codebooks = rqvae.fit_codebooks

  def timed_fit_codebooks(*positional, **named):
    start = time.perf_counter()
    fit_codebooks(*positional, **named)
    kmeans_seconds.append(time.perf_counter() - start)
    print(f"  k-means fit of the {config.num_levels} codebooks: {kmeans_seconds[-1]:.1f}s", flush=True)
  rqvae.fit_codebooks = timed_fit_codebooks

  def log(line: str) -> None:  # called once per phase's only epoch, as it ends
    marks.append(time.perf_counter())
    print(f"  [{marks[-1] - marks[-2]:7.1f}s] {line}", flush=True)

  history = rqvae.train(model, corpus, log=log)
  rqvae.fit_codebooks = fit_codebooks
  # The quantized and decoder phases each start with a k-means fit, inside their first (only) epoch's mark.
  fits = iter(kmeans_seconds)
  for record, seconds in zip(history, np.diff(marks)):
    if record["phase"] != "pretrain":
      seconds -= next(fits, 0.0)
    print(f"{record['phase']:<9} {seconds:8.1f} s per epoch ({args.items / seconds:,.0f} items/s)")
  start = time.perf_counter()
  codes = rqvae.encode_all(model, corpus)
  print(f"SIDs of every item in {time.perf_counter() - start:.1f}s; unique SIDs "
        f"{metrics.unique_ratio(codes):.2%}; codes used per level "
        f"{' '.join(str(len(np.unique(codes[:, level]))) for level in range(args.levels))} of {args.codes}")
  print(f"peak memory {_peak_mb():,.0f} MB (RSS)")


if __name__ == "__main__":
  main()
