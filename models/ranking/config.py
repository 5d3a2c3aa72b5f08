"""Settings of one ranking model run: which item representation, table budget, tower and optimizers."""

import dataclasses
from typing import Tuple

from models.settings import Settings
from models.sid_adaptation import tokenizers

REPRESENTATIONS = ("random_hash", "dense", "unigram", "bigram", "spm", "prefix_ngram")
# Representations whose table size is the budget (SPM: the vocabulary built for that budget).
BUDGETED = ("random_hash", "spm", "prefix_ngram")
# The baselines without Semantic IDs.
NO_SIDS = ("random_hash", "dense")


@dataclasses.dataclass(frozen=True)
class RankingConfig(Settings):
  """One arm of the paper's comparison.

  representation: how items become vectors (REPRESENTATIONS); `dense` feeds the content embedding
    to the tower, the others sum embedding rows of pieces (tokenizers.KINDS).
  table_rows: the embedding table budget for random_hash, spm and prefix_ngram.
  width_multiplier: scales the tower's hidden layers (the paper gives the dense arm 1x, 1.5x, 2x).
  use_history: whether the user's last items are a third item feature, as the paper's two settings.
  split_history: whether the history is pooled in two vectors, the items the user liked and the others
    (else one: a disliked item counts as a liked one).
  use_counters: whether the user's and the item's causal counters (formats/interaction_features.py)
    feed the tower.
  user_table_rows: rows of the hashed user-id embedding table (0: no user id feature).
  cross_layers: DCN-v2 cross layers (tfrs.layers.dcn.Cross) on the tower's input, before the MLP.
  item_dropout: dropout rate on the item vectors (candidate, current, history) while training: per-item
    rows learned from a few interactions each otherwise let the tower memorise warm items.
  sid_like_rates: whether the tower of a SID representation reads the candidate's SID-cluster like-rates
    (sid_clusters.py: the smoothed like-rate of earlier interactions with the items sharing its first
    code, and its first two codes) and its own like-rate smoothed towards them. Random hashing and dense
    content have no SIDs: for them it is ignored.
  warmup_examples: the warm-up trains on the backfill's latest this many interactions (0: all of them), so a
    refresh's training time stays bounded as history grows; the counts it learns from still cover all.
  remap_examples: a SID refresh's remapped warm-up (models/ranking/remap.py) trains on the latest this many
    interactions (0: all), one pass at a continuous-training step's learning rates (docs/refresh.md).
  remap_pieces: the remap's item-table rows whose piece the old vocabulary had: "fit" (fitted with the
    others, starting from the old rows) or "copy" (kept as they were: for stable codes only, since across
    an RQ-VAE trained from scratch a code's number means nothing).
  step_lr_scale: both learning rates of the continuous-training steps after the warm-up, as a multiple of
    the warm-up's (a span of a few hundred interactions is a few noisy Adam steps).
  counter_tower: whether a second tower (same cross layers and hidden units) reads the counting features
    only (counters, and the SID-cluster like-rates with sid_like_rates), trained on its own loss beside
    the main tower's; the model's logit is the mean of the two (an ensemble of the two inside one model).
    Without counting features (no counters, no SID-cluster rates) there is no second tower.
  history_attention: whether the candidate attends to the user's history items (history_attention.py: each
    item's vector with its label, its recency and, for SID representations, the SID prefix it shares with
    the candidate), a vector more for the main tower; attention_heads splits embedding_dim. With
    history_ages each item's age in days before the candidate (fields.HISTORY_AGE_DAYS) is an input too
    (ignored without the attention).
  history_window: the model reads each example's last this many history items (the history, its labels and
    ages, and the history like-rate among the counting features); 0: all the examples carry (the ingestion's
    history_length).
  like_rate_window: the history like-rate among the counting features reads the last this many items instead
    (0: history_window's), for the regression and the trees alike (counter_window).
  decayed_counters: whether the counting features include the user's and the item's decayed counters
    (fields.counter_features(decayed=True)); ignored without use_counters.
  """
  KIND = "ranking"
  TUPLES = ("hidden_units",)
  representation: str = "spm"
  table_rows: int = 4096
  embedding_dim: int = 32
  # Chosen on the first 12 months of ml-latest-small from 2016 (README, "Ranker settings").
  hidden_units: Tuple[int, ...] = (64, 32)
  width_multiplier: float = 1.0
  use_history: bool = True
  split_history: bool = False
  use_counters: bool = True
  user_table_rows: int = 0
  cross_layers: int = 2    # README, "Ranker settings": chosen on the early months
  item_dropout: float = 0.5
  # README, "Ranker settings", third round: chosen on the early months.
  sid_like_rates: bool = True
  step_lr_scale: float = 0.1
  counter_tower: bool = True
  # docs/ranking.md, fourth round (issue 25): chosen on the early months.
  history_attention: bool = True
  attention_heads: int = 2
  history_ages: bool = True
  decayed_counters: bool = False
  # docs/ranking.md, fifth round (issue 25): chosen on the early months.
  history_window: int = 10
  like_rate_window: int = 0
  learning_rate: float = 3e-3
  embedding_learning_rate: float = 0.2
  batch_size: int = 256
  epochs: int = 1           # per continuous-training step (one pass over a span's logs)
  warmup_epochs: int = 3    # the first step, on the backfill, which has no model to start from
  warmup_examples: int = 100_000
  remap_examples: int = 10_000
  remap_pieces: str = "fit"
  seed: int = 0
  max_bigram_rows: int = tokenizers.DEFAULT_MAX_ROWS

  def __post_init__(self):
    if self.representation not in REPRESENTATIONS:
      raise ValueError(f"unknown item representation {self.representation!r}; expected one of "
                       f"{', '.join(REPRESENTATIONS)}")
    for name in ("table_rows", "embedding_dim", "batch_size", "epochs", "warmup_epochs", "attention_heads"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    for name in ("user_table_rows", "cross_layers", "warmup_examples", "history_window",
                 "like_rate_window", "remap_examples"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
    if self.remap_pieces not in ("fit", "copy"):
      raise ValueError(f"remap_pieces must be 'fit' or 'copy', got {self.remap_pieces!r}")
    if self.step_lr_scale < 0:
      raise ValueError(f"step_lr_scale must be >= 0, got {self.step_lr_scale}")
    if not 0 <= self.item_dropout < 1:
      raise ValueError(f"item_dropout must be in [0, 1), got {self.item_dropout}")
    if self.width_multiplier <= 0 or not self.hidden_units:
      raise ValueError("the tower needs hidden_units and a positive width_multiplier")

  @property
  def uses_sid_clusters(self) -> bool:
    return self.sid_like_rates and self.uses_sids

  @property
  def uses_history_ages(self) -> bool:
    return self.history_ages and self.history_attention

  @property
  def uses_decayed_counters(self) -> bool:
    return self.decayed_counters and self.use_counters

  @property
  def reads_history(self) -> bool:
    """Whether the model reads the history items (pooled, or through the attention)."""
    return self.use_history or self.history_attention

  @property
  def counter_window(self) -> int:
    """The history items the history like-rate reads (0: all)."""
    return self.like_rate_window or self.history_window

  @property
  def uses_sids(self) -> bool:
    return self.representation not in NO_SIDS

  @property
  def uses_counter_tower(self) -> bool:
    return self.counter_tower and (self.use_counters or self.uses_sid_clusters)

  @property
  def name(self) -> str:
    """e.g. 'spm@4096+history', 'dense x1.5-history'."""
    size = f"@{self.table_rows}" if self.representation in BUDGETED else ""
    width = f" x{self.width_multiplier:g}" if self.width_multiplier != 1 else ""
    user = "".join(part for part, used in (("+split", self.split_history), ("+counters", self.use_counters),
                                           (f"+user@{self.user_table_rows}", self.user_table_rows),
                                           (f"+cross{self.cross_layers}", self.cross_layers),
                                           ("+sidrates", self.uses_sid_clusters),
                                           (f"+steplr{self.step_lr_scale:g}", self.step_lr_scale != 1),
                                           ("+countertower", self.uses_counter_tower),
                                           ("+attention", self.history_attention),
                                           ("+ages", self.uses_history_ages),
                                           ("+decayed", self.uses_decayed_counters),
                                           (f"+window{self.history_window}", self.history_window),
                                           (f"+likes{self.like_rate_window}", self.like_rate_window)) if used)
    return f"{self.representation}{size}{width}{'+history' if self.use_history else '-history'}{user}"
