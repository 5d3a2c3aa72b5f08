"""Semantic-ID benchmark: RQ-VAE training time; SID quality against FAISS ResidualQuantizer and
RQ-KMeans (reconstruction MSE in the embedding space, unique-SID ratio, mean cosine of items sharing a
prefix, as SidQualityReport computes them); and SID assignment throughput of the bare frozen model, the
Beam job (SemanticIdAssigner) and FAISS ResidualQuantizer.compute_codes at the same L, K and D, in one
run on the pipeline's item embeddings.

  .venv/bin/python bench/semantic_ids.py [--output_root outputs]      (after the main command)

The embeddings are the loop's latest (every item seen so far); the RQ-VAE settings and Beam arguments are
the loop's.
"""

import argparse
import os
import sys
import tempfile
import time
from typing import Dict

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import path_utils

from bench import loop
from components.sid_quality_report import baselines, metrics
from formats import artifacts, item_embeddings
from components.semantic_id_assigner import executor as assigner
from models.rqvae import model as rqvae
from models.rqvae import saved_model
from pipeline import summary


def _rate(label: str, items: int, seconds: float) -> None:
  print(f"{label:<44} {items / seconds:>10,.0f} items/s ({seconds:.2f}s for {items:,})")


def _quality(model: rqvae.RQVAE, embeddings: np.ndarray) -> Dict[str, object]:
  """Prints the RQ-VAE's SID quality beside FAISS ResidualQuantizer's and RQ-KMeans', with ratios;
  returns the FAISS result (its trained quantizer serves the throughput measure)."""
  config = model.config
  codes = rqvae.encode_all(model, embeddings)
  rows = {"RQ-VAE": {"codes": codes, "mse": metrics.reconstruction_mse(model.decode(codes).numpy(),
                                                                        embeddings)},
          "FAISS RQ": baselines.faiss_residual_quantizer(embeddings, config.num_levels, config.codebook_size),
          "RQ-KMeans": baselines.rq_kmeans(embeddings, config.num_levels, config.codebook_size)}
  print(f"{'SID quality':<12} {'MSE':>9} {'unique':>8}   " + " ".join(
      f"{f'cos@{length}':>6}" for length in range(1, config.num_levels + 1)))
  for name, row in rows.items():
    row["unique"] = metrics.unique_ratio(row["codes"])
    row["cosine"] = [r["mean_pairwise_cosine"] for r in metrics.prefix_similarity(row["codes"], embeddings)[1:]]
    print(f"{name:<12} {row['mse']:>9.6f} {row['unique']:>8.2%}   "
          + " ".join(f"{c:>6.3f}" for c in row["cosine"]))
  ours = rows["RQ-VAE"]
  for name in ("FAISS RQ", "RQ-KMeans"):
    other = rows[name]
    print(f"RQ-VAE / {name:<10} {ours['mse'] / other['mse']:>8.3f}x {ours['unique'] / other['unique']:>7.4f}x  "
          + " ".join(f"{a / b:>5.3f}x" for a, b in zip(ours["cosine"], other["cosine"])))
  return rows["FAISS RQ"]


def main(argv=None) -> None:
  _, loop_config = loop.parse(argparse.ArgumentParser(description=__doc__.splitlines()[0]), argv)
  embeddings_artifact = summary.latest_artifact(
      summary.latest_outputs_at(loop_config.metadata_path, loop_config.pipeline_name), artifacts.ItemEmbeddings,
      "embeddings", *summary.EMBEDDING_NODES)
  _, embeddings = item_embeddings.load(embeddings_artifact)
  config = rqvae.RQVAEConfig(**{**loop_config.rqvae, "input_dim": embeddings.shape[1]})
  print(f"{len(embeddings):,} items, D={config.input_dim}, L={config.num_levels}, K={config.codebook_size}")

  model = rqvae.RQVAE(config)
  start = time.perf_counter()
  history = rqvae.train(model, embeddings, log=lambda _: None)
  seconds = time.perf_counter() - start
  print(f"RQ-VAE training: {seconds:.1f}s for {len(history)} epochs ({config.pretrain_epochs} autoencoder, "
        f"{config.epochs} quantized, {config.refine_epochs} decoder refinement); reconstruction loss "
        f"{history[-1]['reconstruction']:.4f} per item at the end")
  quantizer = _quality(model, embeddings)["quantizer"]

  with tempfile.TemporaryDirectory() as tmp:
    export_dir = saved_model.export(model, path_utils.serving_model_path(tmp))
    encode = saved_model.load_signatures(export_dir)[saved_model.ENCODE]
    batch = tf.constant(embeddings)
    encode(embeddings=batch[:1024])
    start = time.perf_counter()
    for _ in range(5):
      encode(embeddings=batch)
    _rate("bare frozen RQ-VAE (SavedModel encode)", 5 * len(embeddings), time.perf_counter() - start)

    start = time.perf_counter()
    for _ in range(5):
      quantizer.compute_codes(embeddings)
    _rate("FAISS ResidualQuantizer.compute_codes", 5 * len(embeddings), time.perf_counter() - start)

    model_artifact = artifacts.RQVAEModel()
    model_artifact.uri = tmp
    output = artifacts.SemanticIds()
    output.uri = os.path.join(tmp, "sids")
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=loop_config.beam_pipeline_args)
    start = time.perf_counter()
    assigner.Executor(context).Do({"embeddings": [embeddings_artifact], "model": [model_artifact]},
                                  {"semantic_ids": [output]}, {"batch_size": 1024})
    _rate("SemanticIdAssigner Beam job (DirectRunner)", len(embeddings), time.perf_counter() - start)


if __name__ == "__main__":
  loop.run(main)
