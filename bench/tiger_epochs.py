"""TIGER's leave-one-out figures after every training epoch: how long the SID refresh should train it.

  .venv/bin/python bench/tiger_epochs.py --data_root data/ml-latest-small --output_root OUT --epochs 12
      [--tiger '{"prefix_rows": 65536}'] [--output outputs/tiger_epochs]

The model and its Semantic IDs are bench/retrieval.py's `tiger` (the loop's settings at OUT, --tiger over
them, warmup_epochs set to --epochs); after each epoch it recommends for the validation users (each user's
second-last item) and the test users (the last) over the whole catalog. Prints a markdown table and writes
report.md and report.json to --output. Choose epochs on the validation column, report the test column.
"""

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf

from bench import retrieval
from bench import retrieval_protocols as protocols
from models.retrieval import evaluation

METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


class EpochScores(tf.keras.callbacks.Callback):
  """Validation and test figures of `model` after each epoch."""

  def __init__(self, model: Any, data: protocols.LeaveOneOut):
    super().__init__()
    self.tiger, self.data, self.rows = model, data, []
    self.start = time.perf_counter()

  def on_epoch_end(self, epoch: int, logs: Dict[str, float] = None) -> None:
    row = {"epoch": epoch + 1, "loss": float((logs or {}).get("loss", float("nan"))),
           "seconds": time.perf_counter() - self.start}
    for name, examples in (("validation", self.data.validation), ("test", self.data.test)):
      scores = retrieval.metrics(retrieval.recommend(self.tiger, examples), [examples])
      row[name] = {m: scores[evaluation.OVERALL][m] for m in METRICS}
    self.rows.append(row)
    print(f"  epoch {row['epoch']}: loss {row['loss']:.3f}, validation Recall@10 {row['validation']['recall@10']:.4f}, "
          f"test Recall@10 {row['test']['recall@10']:.4f}", flush=True)
    self.start = time.perf_counter()


def table(rows: List[Dict[str, Any]]) -> List[str]:
  lines = ["| epoch | loss | validation Recall@10 | validation NDCG@10 | test Recall@5 | test NDCG@5 | test Recall@10 "
           "| test NDCG@10 | epoch s |", "|" + " --- |" * 9]
  for row in rows:
    cells = [row["validation"]["recall@10"], row["validation"]["ndcg@10"]] + [row["test"][m] for m in METRICS]
    lines.append(f"| {row['epoch']} | {row['loss']:.3f} | " + " | ".join(f"{c:.4f}" for c in cells)
                 + f" | {row['seconds']:.0f} |")
  return lines


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_root", required=True)
  parser.add_argument("--output_root", required=True, help="a main-command output root (Semantic IDs, settings)")
  parser.add_argument("--epochs", type=int, default=12)
  parser.add_argument("--tiger", default="{}", help="JSON of RetrievalConfig settings over the loop's")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", default="outputs/tiger_epochs")
  args = parser.parse_args(argv)
  if args.epochs < 1:
    parser.error(f"--epochs must be at least 1, got {args.epochs}")
  args.tiger = json.dumps({**json.loads(args.tiger), "warmup_epochs": args.epochs})
  data = protocols.leave_one_out(protocols.read_ratings(args.data_root))
  model = retrieval.MODELS["tiger"](data, args)
  scores = EpochScores(model, data)
  model.fit(data.train, callbacks=[scores])
  lines = [f"# TIGER per epoch: {args.data_root}, settings {model.config.to_json()}", ""] + table(scores.rows)
  print("\n".join(lines))
  os.makedirs(args.output, exist_ok=True)
  with open(os.path.join(args.output, "report.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(os.path.join(args.output, "report.json"), "w") as f:
    json.dump({"args": vars(args), "epochs": scores.rows}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
