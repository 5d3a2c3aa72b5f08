"""PNG plots of the SID quality report (matplotlib, no display needed)."""

import os
from typing import Any, Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top


def _save(figure, directory: str, name: str) -> str:
  path = os.path.join(directory, name)
  with tf.io.gfile.GFile(path, "wb") as f:
    figure.savefig(f, format="png", dpi=100, bbox_inches="tight")
  plt.close(figure)
  return name


def write_all(directory: str, report: Dict[str, Any]) -> List[str]:
  names = []
  figure, axis = plt.subplots(figsize=(6, 3.5))
  for row in (r for r in report["comparison"] if "utilisation" in r):
    axis.plot(range(1, len(row["utilisation"]) + 1), row["utilisation"], marker="o", label=row["method"])
  axis.set(xlabel="level", ylabel="codes used / K", title="Codebook utilisation", ylim=(0, 1.05))
  axis.legend()
  names.append(_save(figure, directory, "utilisation.png"))

  similarity = report["prefix_similarity"]
  figure, axis = plt.subplots(figsize=(6, 3.5))
  axis.plot([r["prefix_length"] for r in similarity], [r["mean_pairwise_cosine"] for r in similarity],
            marker="o")
  axis.set(xlabel="shared prefix length (0 = any two items)", ylabel="mean pairwise cosine",
           title="Items sharing a longer prefix are more similar")
  names.append(_save(figure, directory, "prefix_similarity.png"))
  return names
