"""Executor of SidQualityReport: report.json, report.html and PNG plots on a SID assignment."""

import html
import json
import os
from typing import Any, Dict, List

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from formats import item_corpus, item_embeddings, semantic_ids
from components.sid_quality_report import baselines, metrics, plots
from models.rqvae import model as rqvae
from models.rqvae import saved_model

REPORT_JSON, REPORT_HTML = "report.json", "report.html"
# The report's entry on what this refresh changed against the previous one's Semantic IDs.
CHANGES = "changes_since_previous_refresh"


def _titles(items: types.Artifact) -> Dict[int, str]:
  corpus = item_corpus.read_features(items, {"item_id": tf.int64, "title": tf.string})
  return {int(i): t.decode() for i, t in zip(corpus["item_id"], corpus["title"])}


def _quantizer_summary(name: str, codes: np.ndarray, mse: float, seconds: float, k: int) -> Dict[str, Any]:
  usage = rqvae.code_usage(codes, k)
  return {"method": name, "reconstruction_mse": mse, "unique_sid_ratio": metrics.unique_ratio(codes),
          "utilisation": [u["utilisation"] for u in usage],
          "perplexity": [u["perplexity"] for u in usage], "seconds": seconds}


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    ids, embeddings = item_embeddings.load(artifact_utils.get_single_instance(input_dict["embeddings"]))
    sid_ids, codes, suffixes = semantic_ids.load(artifact_utils.get_single_instance(input_dict["semantic_ids"]))
    if not np.array_equal(ids, sid_ids):
      raise ValueError("semantic_ids and embeddings cover different items")
    model = artifact_utils.get_single_instance(input_dict["model"])
    export_dir = path_utils.serving_model_path(model.uri)
    config = saved_model.load_config(export_dir)
    decode = saved_model.load_signatures(export_dir)[saved_model.DECODE]
    reconstruction = decode(codes=tf.constant(codes, tf.int32))[saved_model.RECONSTRUCTION_KEY].numpy()
    rqvae_mse = metrics.reconstruction_mse(reconstruction, embeddings)
    titles_by_id = _titles(artifact_utils.get_single_instance(input_dict["items"]))
    titles = [titles_by_id.get(int(i), str(i)) for i in ids]
    rng = np.random.default_rng(int(exec_properties.get("seed") or 0))
    levels, k = config.num_levels, config.codebook_size

    comparison = [_quantizer_summary("RQ-VAE (this pipeline)", codes, rqvae_mse,
                                     model.get_float_custom_property("training_seconds"), k)]
    for name, baseline in (("FAISS ResidualQuantizer", baselines.faiss_residual_quantizer),
                           ("RQ-KMeans", baselines.rq_kmeans)):
      try:
        result = baseline(embeddings, levels, k)
      except (RuntimeError, ValueError) as e:  # e.g. FAISS refuses fewer items than dimensions
        comparison.append({"method": name, "skipped": str(e).splitlines()[-1][:200]})
        continue
      comparison.append(_quantizer_summary(name, result["codes"], result["mse"], result["seconds"], k))
    report: Dict[str, Any] = {
        "items": int(len(ids)), "num_levels": levels, "codebook_size": k,
        "rqvae": comparison[0],
        "items_with_nonzero_suffix": int((suffixes > 0).sum()),
        "prefix_similarity": metrics.prefix_similarity(codes, embeddings),
        "comparison": comparison,
        "example_subtries": {
            str(length): metrics.example_subtries(codes, titles, length, count=4, max_items=8, rng=rng)
            for length in range(1, levels + 1)},
    }
    if input_dict.get("semantic_ids_v0"):
      v0 = artifact_utils.get_single_instance(input_dict["semantic_ids_v0"])
      v0_ids, v0_codes, _ = semantic_ids.load(v0)
      if np.array_equal(v0_ids, ids):
        report["stability_v0_vs_v1"] = metrics.prefix_agreement(v0_codes, codes)
    if input_dict.get("previous_semantic_ids"):
      previous_ids, previous_codes, _ = semantic_ids.load(
          artifact_utils.get_single_instance(input_dict["previous_semantic_ids"]))
      report[CHANGES] = metrics.code_changes(previous_ids, previous_codes, ids, codes)

    output = artifact_utils.get_single_instance(output_dict["report"])
    images = plots.write_all(output.uri, report)
    with tf.io.gfile.GFile(os.path.join(output.uri, REPORT_JSON), "w") as f:
      json.dump(report, f, indent=1)
    with tf.io.gfile.GFile(os.path.join(output.uri, REPORT_HTML), "w") as f:
      f.write(render_html(report, images))
    for prefix, row in (("rqvae", comparison[0]), ("faiss", comparison[1]), ("rq_kmeans", comparison[2])):
      if "skipped" not in row:
        output.set_float_custom_property(f"{prefix}_mse", row["reconstruction_mse"])
        output.set_float_custom_property(f"{prefix}_unique_ratio", row["unique_sid_ratio"])
    if CHANGES in report:
      output.set_float_custom_property("sid_changed_share", report[CHANGES]["sid_changed_share"])


def _table(rows: List[Dict[str, Any]], columns: List[str]) -> str:
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))
  head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
  body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
  return f"<table border=1 cellpadding=4><tr>{head}</tr>{body}</table>"


def render_html(report: Dict[str, Any], images: List[str]) -> str:
  parts = [f"<h1>Semantic ID quality: {report['items']} items, {report['num_levels']} levels x "
           f"{report['codebook_size']} codes</h1>",
           "<h2>RQ-VAE vs baselines (same embeddings, same L and K)</h2>",
           _table(report["comparison"], ["method", "reconstruction_mse", "unique_sid_ratio",
                                         "utilisation", "perplexity", "seconds", "skipped"]),
           "<h2>Table 1: items sharing a SID prefix</h2>",
           _table(report["prefix_similarity"], ["prefix_length", "mean_pairwise_cosine", "subtries",
                                                "subtrie_size_p25", "subtrie_size_p75"])]
  if "stability_v0_vs_v1" in report:
    parts += ["<h2>Stability: RQ-VAE v0 (older items) vs v1 (all items)</h2>",
              _table(report["stability_v0_vs_v1"], ["prefix_length", "pairs_kept_a_to_b",
                                                    "pairs_kept_b_to_a", "adjusted_rand_index"])]
  if CHANGES in report:
    changes = report[CHANGES]
    parts += [f"<h2>Since the previous refresh: {changes['items_in_both']} items in both, {changes['items_new']} "
              f"new; SID changed for {changes['sid_changed_share']:.1%}</h2>",
              _table([{"level": level + 1, "code_changed_share": share}
                      for level, share in enumerate(changes["changed_share"])], ["level", "code_changed_share"]),
              _table(changes["prefix_agreement"], ["prefix_length", "pairs_kept_a_to_b", "pairs_kept_b_to_a",
                                                   "adjusted_rand_index"])]
  parts.append("<h2>Example sub-tries</h2>")
  for length, examples in report["example_subtries"].items():
    for ex in examples:
      parts.append(f"<p><b>prefix {ex['prefix']}</b> ({ex['size']} items): "
                   f"{html.escape('; '.join(ex['titles']))}</p>")
  parts += [f'<img src="{name}" width="480">' for name in images]
  return "<html><body>" + "\n".join(parts) + "</body></html>"
