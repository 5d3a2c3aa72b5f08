"""SID adaptation benchmark: SentencePiece training time per table budget, and tokenization
throughput (SIDs/s) in graph (tensorflow-text, as the ranking model runs it) vs the sentencepiece
Python library, plus the other adaptations in graph, in one run on the loop's Semantic IDs of the items
the vocabulary was learned over (the SID refresh's: a SID never changes once published).

  .venv/bin/python bench/sid_adaptation.py [--output_root outputs]      (after the main command)
"""

import argparse
import os
import sys
import time
from typing import Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf

from bench import loop
from formats import artifacts, semantic_ids, sid_vocabulary
from models.sid_adaptation import spm, tokenizers
from pipeline import summary

BATCH = 1024
MIN_SECONDS = 2.0


Tokenize = Callable[[np.ndarray, np.ndarray], object]


def _sids_per_second(tokenize: Tokenize, ids: np.ndarray, codes: np.ndarray) -> float:
  """Tokenizes the corpus in batches of BATCH, repeatedly for at least MIN_SECONDS."""
  tokenize(ids[:BATCH], codes[:BATCH])  # warm-up: tracing, resource creation
  done, start = 0, time.perf_counter()
  while time.perf_counter() - start < MIN_SECONDS:
    for begin in range(0, len(codes), BATCH):
      tokenize(ids[begin:begin + BATCH], codes[begin:begin + BATCH])
    done += len(codes)
  return done / (time.perf_counter() - start)


def _in_graph(tokenizer: tokenizers.SidTokenizer) -> Tokenize:
  call = tf.function(lambda ids, codes: tokenizer(ids, codes).flat_values,
                     input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, None], tf.int64)])
  return lambda ids, codes: call(tf.constant(ids), tf.constant(codes)).numpy()


def main(argv=None) -> None:
  _, config = loop.parse(argparse.ArgumentParser(description=__doc__.splitlines()[0]), argv)
  outputs = summary.latest_outputs_at(config.metadata_path, config.pipeline_name)
  ids, codes, _ = semantic_ids.load(summary.latest_artifact(outputs, artifacts.SemanticIds, "semantic_ids",
                                                            "SemanticIdAssigner"))
  vocabulary = summary.latest_artifact(outputs, artifacts.SidVocabulary, "vocabulary", "SidVocabBuilder")
  settings = sid_vocabulary.settings(vocabulary)
  impression_ids, impressions = sid_vocabulary.load_impressions(vocabulary)
  learned_over = np.isin(ids, impression_ids)  # the daily runs' new items came after the vocabulary
  ids, codes = ids[learned_over], codes[learned_over]
  assert np.array_equal(impression_ids, ids), "vocabulary and Semantic IDs come from different SID refreshes"
  levels, k = settings["num_levels"], settings["codebook_size"]
  print(f"{len(ids):,} items, L={levels}, K={k}; {int(impressions.sum()):,} impressions in "
        f"{', '.join(settings['train_splits'])}; batches of {BATCH}; {os.cpu_count()} CPUs")

  for budget in settings["table_budgets"]:
    start = time.perf_counter()
    model = spm.train(codes, impressions, levels, k, budget)
    seconds = time.perf_counter() - start
    processor = spm.processor(model)
    tokenizer = tokenizers.create("spm", levels, k, spm_model=model)
    library_pieces = spm.library_pieces(model, codes, k)
    assert _in_graph(tokenizer)(ids, codes).tolist() == [p for row in library_pieces for p in row]
    graph = _sids_per_second(_in_graph(tokenizer), ids, codes)
    library = _sids_per_second(lambda _, c: processor.encode(spm.to_text(c, k)), ids, codes)
    texts = np.array(spm.to_text(codes, k), dtype=object)
    library_encode_only = _sids_per_second(lambda _, t: processor.encode(t.tolist()), ids, texts)
    print(f"SPM @{budget:>6,}: trained in {seconds:.2f}s ({processor.get_piece_size():,} pieces); "
          f"in graph {graph:>9,.0f} SIDs/s, library {library:>9,.0f} SIDs/s "
          f"(encode alone, text ready: {library_encode_only:,.0f})")

  budget = settings["table_budgets"][-1]
  for kind in ("unigram", "bigram", "prefix_ngram", "random_hash"):
    tokenizer = tokenizers.create(kind, levels, k, num_rows=budget)
    print(f"{kind:<13} in graph {_sids_per_second(_in_graph(tokenizer), ids, codes):>11,.0f} SIDs/s "
          f"({tokenizer.num_rows:,} rows)")


if __name__ == "__main__":
  loop.run(main)
