"""Fingerprints of input files, passed as execution properties so that TFX's cache key changes
whenever an input file does (TFX's FileBasedExampleGen does the same in its driver)."""

import hashlib
from typing import Iterable

import tensorflow as tf


def files_fingerprint(paths: Iterable[str]) -> str:
  """sha256 over path, size and modification time of each existing file ('missing' otherwise)."""
  digest = hashlib.sha256()
  for path in paths:
    if tf.io.gfile.exists(path):
      stat = tf.io.gfile.stat(path)
      digest.update(f"{path}:{stat.length}:{stat.mtime_nsec}\n".encode())
    else:
      digest.update(f"{path}:missing\n".encode())
  return digest.hexdigest()
