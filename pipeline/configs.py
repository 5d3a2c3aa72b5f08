"""The pipelines' typed configuration, with the embedded defaults of the main command.

Nothing here is tied to one dataset: dates and the span period come from flags or from the data
(pipeline/data_profile.py chooses them and says why). The defaults below are model settings.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

from formats import interaction_features as fields, served_models
from formats.errors import InputDataError
from models.content_encoder import SERVED_MODEL_NAME as ENCODER_MODEL_NAME
from pipeline import beam_runners

PIPELINE_NAME = served_models.RANKING_MODEL_NAME  # The ranking model is served under the pipeline's name.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ROOT = os.path.join(PROJECT_ROOT, "data", "ml-latest-small")
OUTPUT_ROOT = os.path.join(PROJECT_ROOT, "outputs")

# in_memory keeps start-up cheap on a laptop; for larger corpora use
# beam_runners.local_args("multi_processing", 0) (every core), beam_runners.dask_args(scheduler)
# for a Dask cluster (which executors run there: tests/test_beam_runners.py), or
# --runner=DataflowRunner/FlinkRunner/SparkRunner with --setup_file.
BEAM_PIPELINE_ARGS = beam_runners.local_args("in_memory", 1)

# RQ-VAE for ~10k items: 3 levels x 256 codes (TIGER used 3 x 256 for 12k items); the rest is
# RQVAEConfig's defaults, tuned on the bundled corpus (bench/rqvae_tuning.md).
RQVAE_CONFIG = {"num_levels": 3, "codebook_size": 256, "seed": 0}
# SID adaptation (Singh et al. 2023, section 3.3). Three embedding table budgets, 4x apart: the SPM
# vocabulary size and the prefix-ngram / random-hashing table size. 769 rows is the least SPM can
# use at 3 x 256 (one row per (level, code) + <unk>); 16,384 already covers every impressed SID whole.
SID_TABLE_BUDGETS = [1024, 4096, 16384]
# Ranking (Singh et al. 2023, section 4): the arm the pipeline trains and serves; pipeline/experiments.py
# compares every arm. SPM at the middle budget, with the user's history.
RANKING_CONFIG = {"representation": "spm", "table_rows": 4096, "use_history": True}
# Retrieval (TIGER, models/retrieval): RetrievalConfig's defaults, sized for this data on 2 CPUs.
RETRIEVAL_CONFIG: Dict[str, Any] = {}
REFRESH_WARM_STARTS = ("scratch", "remap")
RETRIEVAL_MODEL_NAME, RECOMMEND_MODEL_NAME = served_models.RETRIEVAL_MODEL_NAME, served_models.RECOMMEND_MODEL_NAME


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Everything the SID refresh and daily pipelines need; runners only fill it from flags.

  `input_base` is the span-partitioned input (pipeline/partition.py): backfill/ and span-<N>/ folders.
  `start_date` is the first daily span's date: the SID refresh learns from everything before it.
  """
  input_base: str
  output_root: str
  span_period: str
  start_date: str
  pipeline_name: str = PIPELINE_NAME
  # Appendix A.2 stability check: an RQ-VAE v0 trained only on items first rated before this date.
  rqvae_v0_cutoff: Optional[str] = None
  history_length: int = 20
  # The decayed counters' half-life (formats/interaction_features.py); changing it needs a SID refresh.
  counter_half_life_days: float = fields.COUNTER_HALF_LIFE_DAYS
  max_tags: int = 10
  bad_row_policy: str = "quarantine"
  max_bad_row_fraction: float = 0.01
  # The refresh ingests a larger backfill in chunks of consecutive spans of at most this many ratings,
  # so that its memory does not grow with the backfill (components/span_example_gen/chunks.py); 0: whole.
  backfill_chunk_interactions: int = 250_000
  # None: the encoder's DEFAULT_BATCH_SIZE, the fastest in bench/encoder.py.
  embedding_batch_size: Optional[int] = None
  rqvae: Dict[str, Any] = dataclasses.field(default_factory=lambda: dict(RQVAE_CONFIG))
  # Stable codes: a SID refresh starts its RQ-VAE from the previous refresh's (when there is one), so that
  # items whose content and neighbourhood did not change keep their SIDs (models/rqvae/model.py).
  rqvae_warm_start: bool = False
  # What a SID refresh's ranking and retrieval warm-ups start from: "remap" (the latest ranking and retrieval
  # models before the refresh's start remapped onto the new SIDs, models/ranking/remap.py and
  # models/retrieval/remap.py, then trained on the latest remap_examples; none in a first refresh: from
  # scratch) or "scratch" (trained on the backfill's latest warmup_examples). docs/refresh.md: remap was no
  # worse for either model, at a third (ranker) and a seventh (retrieval) of the training time.
  refresh_warm_start: str = "remap"
  sid_table_budgets: List[int] = dataclasses.field(default_factory=lambda: list(SID_TABLE_BUDGETS))
  ranking: Dict[str, Any] = dataclasses.field(default_factory=lambda: dict(RANKING_CONFIG))
  # Blessing: AUC on the next span at least `min_auc` (0.5 = chance) and at most `max_auc_regression`
  # below the currently blessed model's AUC on the same span.
  min_auc: float = 0.55
  max_auc_regression: float = 0.01
  # ... on at least this many interactions: an AUC over a handful of them says nothing.
  min_eval_examples: int = 50
  retrieval: Dict[str, Any] = dataclasses.field(default_factory=lambda: dict(RETRIEVAL_CONFIG))
  # Retrieval blessing: full-catalog Recall@10 on the next span at least `min_recall_at_10` and at most
  # `max_recall_regression` below the blessed retrieval model's (a span's Recall@10 moves by about 0.02).
  min_recall_at_10: float = 0.01
  max_recall_regression: float = 0.02
  # Items the two-stage recommend retrieves for the ranker.
  num_candidates: int = 100
  precomputed_embeddings: Optional[str] = None
  embedding_dim: Optional[int] = None
  beam_pipeline_args: List[str] = dataclasses.field(default_factory=lambda: list(BEAM_PIPELINE_ARGS))
  enable_cache: bool = True

  def __post_init__(self):
    if self.refresh_warm_start not in REFRESH_WARM_STARTS:
      raise InputDataError(f"refresh_warm_start must be one of {', '.join(REFRESH_WARM_STARTS)}, got "
                           f"{self.refresh_warm_start!r}")

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_root, "pipeline_root")

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_root, "metadata.sqlite")

  @property
  def serving_model_dir(self) -> str:
    return os.path.join(self.output_root, "serving", self.pipeline_name)

  @property
  def encoder_serving_dir(self) -> str:
    """Where the SID refresh pushes the content encoder, a model of its own beside the ranking model."""
    return os.path.join(self.output_root, "serving", ENCODER_MODEL_NAME)

  @property
  def retrieval_serving_dir(self) -> str:
    return os.path.join(self.output_root, "serving", RETRIEVAL_MODEL_NAME)

  @property
  def recommender_serving_dir(self) -> str:
    """Where the daily runs push the two-stage `recommend` model."""
    return os.path.join(self.output_root, "serving", RECOMMEND_MODEL_NAME)

  @staticmethod
  def overrides(path: Optional[str]) -> Dict[str, Any]:
    """The PipelineConfig fields a --config JSON file sets ({} without one); InputDataError naming unknown ones."""
    if not path:
      return {}
    with open(path) as f:
      overrides = json.load(f)
    unknown = sorted(set(overrides) - {field.name for field in dataclasses.fields(PipelineConfig)})
    if unknown:
      raise InputDataError(f"--config {path}: unknown settings {', '.join(unknown)}")
    return overrides

  def replace(self, **changes) -> "PipelineConfig":
    return dataclasses.replace(self, **changes)
