"""Content encoder benchmark: agreement with sentence-transformers and throughput on this machine.

  .venv/bin/python bench/encoder.py [--batch_sizes 16 64 128] [--data_root DIR] [--output_root outputs]

Prints the minimum cosine to the reference vectors (tests/testdata/minilm) and items/s of the
exported SavedModel over the content text of every movie of --data_root (the bundled 9,742 by
default), with the loop's tag settings; the SavedModel goes to <output_root>/bench/encoder.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

from bench import loop  # pylint: disable=g-import-not-at-top
from components.span_example_gen import features, rows  # pylint: disable=g-import-not-at-top
from models.content_encoder import encoder as content_encoder  # pylint: disable=g-import-not-at-top
from pipeline import configs  # pylint: disable=g-import-not-at-top

REFERENCE_DIR = os.path.join(configs.PROJECT_ROOT, "tests", "testdata", "minilm")


def corpus_texts(data_root: str, max_tags: int) -> list:
  """content_text of every movie of `data_root`, built as SpanExampleGen builds it."""
  tags = {}
  for line in list(rows.read_numbered_lines(os.path.join(data_root, "tags.csv")))[1:]:
    tag = rows.parse_tag(line)
    if isinstance(tag, rows.Tag):
      tags.setdefault(tag.item_id, []).append(tag)
  texts = []
  for line in list(rows.read_numbered_lines(os.path.join(data_root, "movies.csv")))[1:]:
    movie = rows.parse_movie(line)
    texts.append(features.content_text(movie, features.aggregate_tags(tags.get(movie.item_id, []), max_tags)))
  return texts


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 64, 128])
  parser.add_argument("--data_root", default=configs.DATA_ROOT, help="MovieLens-format directory")
  args, config = loop.parse(parser, argv)
  export_dir = os.path.join(args.output_root, "bench", "encoder")
  start = time.perf_counter()
  content_encoder.export_saved_model(export_dir)
  embed = tf.saved_model.load(export_dir).signatures["serving_default"]
  print(f"export + load: {time.perf_counter() - start:.1f}s")

  with open(os.path.join(REFERENCE_DIR, "reference.json")) as f:
    sentences = json.load(f)["sentences"]
  expected = np.load(os.path.join(REFERENCE_DIR, "reference_embeddings.npz"))["embeddings"]
  vectors = embed(text=tf.constant(sentences))[content_encoder.OUTPUT_KEY].numpy()
  cosines = np.sum(vectors * expected, axis=1)
  print(f"agreement with sentence-transformers: min cosine {cosines.min():.7f}, "
        f"mean {cosines.mean():.7f} over {len(sentences)} sentences")

  texts = corpus_texts(args.data_root, config.max_tags)
  print(f"corpus: {len(texts)} items, {np.mean([len(t) for t in texts]):.0f} characters on average, "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} threads")
  for batch_size in args.batch_sizes:
    embed(text=tf.constant(texts[:batch_size]))  # trace and warm up this shape family
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
      embed(text=tf.constant(texts[i:i + batch_size]))
    seconds = time.perf_counter() - start
    print(f"batch {batch_size:>4}: {len(texts) / seconds:7.1f} items/s ({seconds:.1f}s for the corpus)")


if __name__ == "__main__":
  loop.run(main)
