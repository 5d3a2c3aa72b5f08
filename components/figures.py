"""matplotlib without a display, and PNGs written through tf.io.gfile (local disk or GCS)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import tensorflow as tf


def save_png(figure, directory: str, name: str) -> str:
  with tf.io.gfile.GFile(os.path.join(directory, name), "wb") as f:
    figure.savefig(f, format="png", dpi=100, bbox_inches="tight")
  plt.close(figure)
  return name
