"""The ranking warm-up's data phases on a backfill, without training: resident memory after each and the peak.

  .venv/bin/python bench/warmup_memory.py --examples ROOT/SpanExampleGen/examples/N \
      --semantic_ids ROOT/SemanticIdAssigner/semantic_ids/N --vocabulary ROOT/SidVocabBuilder/vocabulary/N

The artifacts are a SID refresh's (ROOT: a run's pipeline_root, e.g. bench/scale.py's x100). The phases are
models/ranking/trainer.py's run_fn before fit: the model, the per-interaction columns, the choice of the latest
`warmup_examples` and their SID-cluster counts, two passes over the training dataset (the cache filled, then
read), and the counts the model keeps. The process is sampled every 50 ms.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil

from bench.process_memory import PeakSampler
from formats import artifacts, sid_vocabulary
from formats import interaction_features as fields
from models.ranking import model as ranking
from models.ranking import trainer
from models.ranking.config import RankingConfig


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--examples", required=True, help="a SpanExampleGen examples artifact (the backfill's)")
  parser.add_argument("--semantic_ids", required=True)
  parser.add_argument("--vocabulary", required=True)
  args = parser.parse_args(argv)
  peak = PeakSampler(interval=0.05)
  peak.start()

  def phase(name: str) -> None:
    time.sleep(0.2)  # a last sample
    print(f"{name:<45} resident {psutil.Process().memory_info().rss / 2 ** 20:7,.0f} MB, peak so far "
          f"{peak.largest:7,.0f} MB", flush=True)

  config = RankingConfig()
  custom_config = {"vocabulary_uri": args.vocabulary, "semantic_ids_uri": args.semantic_ids}
  catalog = trainer.load_catalog(custom_config, with_content=False)
  vocabulary = artifacts.SidVocabulary()
  vocabulary.uri = args.vocabulary
  model = ranking.build(config, catalog, sid_vocabulary.load_model(vocabulary, config.table_rows))
  phase("model built")
  files = [os.path.join(args.examples, "Split-interactions", "*")]
  span = ranking.columns(files, fields.COUNTING_SPEC)
  phase(f"columns of {len(span[fields.LABEL]):,} interactions")
  keep = ranking.most_recent(span[fields.TIMESTAMP], config.warmup_examples)
  extra = model.warmup_features(span, keep)
  phase("warm-up SID-cluster counts")
  train = ranking.dataset(files, config.batch_size, shuffle_seed=0, cache=True, extra=extra, keep=keep)
  for name in ("first pass (cache filled)", "second pass"):
    batches = sum(1 for _ in train)
    phase(f"{name}, {batches} batches")
  model.count(span)
  phase("counts added to the model")
  return 0


if __name__ == "__main__":
  sys.exit(main())
