"""Embedded defaults of the pipeline: the bundled MovieLens data, local paths, DirectRunner.

Why month spans from 2016 on: ml-latest-small has ratings on 4,110 distinct days over 22 years, most
of them with a handful of ratings from one user, so daily spans are too sparse to train and evaluate
on; months give 24-33 spans with 170-2,400 interactions each over 2016-2018, where 1,441 items are
first rated (the cold-start slice). Everything before 2016 is the `backfill` split for warm-up.
"""

import os
from typing import Any, Dict

from formats import spans

PIPELINE_NAME = "sid_ranking"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ROOT = os.path.join(PROJECT_ROOT, "data", "ml-latest-small")
OUTPUT_ROOT = os.path.join(PROJECT_ROOT, "outputs")
PIPELINE_ROOT = os.path.join(OUTPUT_ROOT, "pipeline_root")
METADATA_PATH = os.path.join(OUTPUT_ROOT, "metadata.sqlite")

SPAN_PERIOD = "month"
START_DATE = "2016-01-01"
HISTORY_LENGTH = 20
MAX_TAGS = 10
BAD_ROW_POLICY = "quarantine"
MAX_BAD_ROW_FRACTION = 0.01
# Short texts pad least in small batches: 16 gave the most items/s in bench/encoder.py on 2 cores.
EMBEDDING_BATCH_SIZE = 16

# in_memory keeps start-up cheap on a laptop; use multi_processing (and direct_num_workers=0 for all
# cores) for larger corpora, or --runner=DataflowRunner/FlinkRunner/SparkRunner with --setup_file.
BEAM_PIPELINE_ARGS = [
    # The DirectRunner's own engine, without its attempt to download the Prism runner binary.
    "--runner=FnApiRunner",
    "--direct_running_mode=in_memory",
    "--direct_num_workers=1",
    # Ships the project to remote workers (Dataflow, Flink, Spark); locally it only stops TFX
    # from building an ephemeral package of itself before each Beam job.
    f"--setup_file={os.path.join(PROJECT_ROOT, 'setup.py')}",
]

# RQ-VAE for ~10k items: 3 levels x 256 codes (TIGER used 3 x 256 for 12k items), a 32-d latent.
RQVAE_CONFIG = {"num_levels": 3, "codebook_size": 256, "latent_dim": 32, "hidden_dim": 256,
                "epochs": 150, "batch_size": 1024, "seed": 0}
# Appendix A.2 stability check: RQ-VAE v0 sees only items first rated before this date.
RQVAE_V0_CUTOFF = START_DATE

# SID adaptation (Singh et al. 2023, section 3.3). Three embedding table budgets, 4x apart: the SPM
# vocabulary size and the prefix-ngram / random-hashing table size. 769 rows is the least SPM can
# use at 3 x 256 (one row per (level, code) + <unk>); 16,384 already covers every impressed SID whole.
SID_TABLE_BUDGETS = [1024, 4096, 16384]
# The vocabulary is learned from interactions before the first span and then frozen, as the ranking
# model is trained and evaluated on the spans: items first rated later are the cold-start case.
SID_VOCAB_TRAIN_SPLITS = ["backfill"]

# Ranking (Singh et al. 2023, section 4): the arm the pipeline trains and serves; pipeline/experiments.py
# compares every arm. SPM at the middle budget, with the user's history.
RANKING_CONFIG = {"representation": "spm", "table_rows": 4096, "use_history": True}
# Continuous training: a warm-up step on backfill and 2016-01..2018-02, then one step per month
# 2018-03..2018-08, each evaluated on the next month (the last, 2018-09, is the newest data).
RANKING_STEP_DATES = ["2018-03-01", "2018-04-01", "2018-05-01", "2018-06-01", "2018-07-01", "2018-08-01"]
# The Evaluator blesses a model whose AUC on the next span is at least this (0.5 = chance).
MIN_AUC = 0.55


def pipeline_args(span_period: str = SPAN_PERIOD) -> Dict[str, Any]:
  """The embedded defaults as create_pipeline's keyword arguments; runners add paths and overrides."""
  return dict(
      pipeline_name=PIPELINE_NAME, span_period=span_period, start_date=START_DATE,
      history_length=HISTORY_LENGTH, max_tags=MAX_TAGS, bad_row_policy=BAD_ROW_POLICY,
      max_bad_row_fraction=MAX_BAD_ROW_FRACTION, embedding_batch_size=EMBEDDING_BATCH_SIZE,
      rqvae_config=RQVAE_CONFIG, rqvae_v0_cutoff=RQVAE_V0_CUTOFF, sid_table_budgets=SID_TABLE_BUDGETS,
      sid_vocab_train_splits=SID_VOCAB_TRAIN_SPLITS, ranking_config=RANKING_CONFIG,
      ranking_spans=[spans.span_of_date(d, span_period) for d in RANKING_STEP_DATES], min_auc=MIN_AUC,
      beam_pipeline_args=BEAM_PIPELINE_ARGS)
